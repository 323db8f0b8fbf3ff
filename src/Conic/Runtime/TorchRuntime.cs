using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace Conic.Runtime;

/// <summary>Process-wide libtorch settings: device choice, threads, denormal flushing.</summary>
public static class TorchRuntime
{
    static bool _initialized;

    /// <summary>
    /// Flushes denormal floats to zero (tiny gradients otherwise slow CPU steps up to 10x) and sets the thread count.
    /// Flushing must come first: worker threads inherit the floating-point mode when they start.
    /// </summary>
    public static Device Initialize(string device, int threads)
    {
        if (!_initialized)
        {
            MemoryAllocator.FixGlibcMmapThreshold();
            _ = zeros(1); // loads libtorch
            TrySetFlushDenormal();
            // NNPACK would take some of the native kernels' convolutions where it initialises, and where it does not
            // (AMD Zen 5) libtorch warns on every convolution: off, the native kernels compute alike on every CPU.
            NativeMethods.SetUserEnabledNNPACK(NativeMethods.GlobalContext(), false);
            if (threads > 0) set_num_threads(threads);
            _initialized = true;
        }
        if (device.StartsWith("cuda", StringComparison.Ordinal))
        {
            try
            {
                InitializeDeviceType(DeviceType.CUDA);
            }
            catch (InvalidOperationException)
            {
                throw new ConicException($"--device {device}: CUDA did not initialise (install TorchSharp-cuda-linux and an NVIDIA driver, or use --device cpu)");
            }
            if (!cuda.is_available())
                throw new ConicException("--device cuda: CUDA is not available (install TorchSharp-cuda-linux and an NVIDIA driver, or use --device cpu)");
        }
        return torch.device(device);
    }

    /// <summary>Whether this CPU has bfloat16 arithmetic (AVX512-BF16 or AMX), which makes bfloat16 convolutions about twice as fast.</summary>
    public static bool CpuHasBFloat16()
    {
        const string cpuinfo = "/proc/cpuinfo";
        if (!File.Exists(cpuinfo)) return false;
        var flags = File.ReadLines(cpuinfo).FirstOrDefault(l => l.StartsWith("flags", StringComparison.Ordinal));
        return flags != null && (flags.Contains(" avx512_bf16", StringComparison.Ordinal) || flags.Contains(" amx_bf16", StringComparison.Ordinal));
    }

    /// <summary>Switches libtorch's oneDNN (mkldnn) CPU kernels on or off for the whole process; off, convolutions run as im2col and BLAS.</summary>
    public static void SetOneDnn(bool on) => NativeMethods.SetUserEnabledMkldnn(NativeMethods.GlobalContext(), on);

    /// <summary>Whether libtorch uses oneDNN's kernels now (one switch for the process).</summary>
    public static bool OneDnnEnabled => NativeMethods.UserEnabledMkldnn(NativeMethods.GlobalContext());

    /// <summary>Whether libtorch may use NNPACK's convolutions.</summary>
    public static bool NnpackEnabled => NativeMethods.UserEnabledNNPACK(NativeMethods.GlobalContext());

    /// <summary>The CPU's model name and family from /proc/cpuinfo (e.g. "AMD EPYC 9R45, family 26"), for messages about its arithmetic.</summary>
    public static string CpuDescription()
    {
        const string cpuinfo = "/proc/cpuinfo";
        if (!File.Exists(cpuinfo)) return System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture.ToString();
        string Field(string name) => File.ReadLines(cpuinfo).FirstOrDefault(l => l.StartsWith(name, StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "?";
        return $"{Field("model name")}, family {Field("cpu family")}";
    }

    static void TrySetFlushDenormal()
    {
        try
        {
            NativeMethods.SetFlushDenormal(NativeMethods.GlobalContext(), true);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            Console.Error.WriteLine($"warning: could not enable flush-denormal in libtorch_cpu ({e.Message}); long runs may slow down");
        }
    }

    static class NativeMethods
    {
        [DllImport("libtorch_cpu", EntryPoint = "_ZN2at13globalContextEv")]
        public static extern IntPtr GlobalContext();

        [DllImport("libtorch_cpu", EntryPoint = "_ZN2at7Context16setFlushDenormalEb")]
        [return: MarshalAs(UnmanagedType.I1)]
        public static extern bool SetFlushDenormal(IntPtr context, [MarshalAs(UnmanagedType.I1)] bool on);

        [DllImport("libtorch_cpu", EntryPoint = "_ZN2at7Context20setUserEnabledMkldnnEb")]
        public static extern void SetUserEnabledMkldnn(IntPtr context, [MarshalAs(UnmanagedType.I1)] bool on);

        [DllImport("libtorch_cpu", EntryPoint = "_ZN2at7Context20setUserEnabledNNPACKEb")]
        public static extern void SetUserEnabledNNPACK(IntPtr context, [MarshalAs(UnmanagedType.I1)] bool on);

        [DllImport("libtorch_cpu", EntryPoint = "_ZNK2at7Context17userEnabledNNPACKEv")]
        [return: MarshalAs(UnmanagedType.I1)]
        public static extern bool UserEnabledNNPACK(IntPtr context);

        [DllImport("libtorch_cpu", EntryPoint = "_ZNK2at7Context17userEnabledMkldnnEv")]
        [return: MarshalAs(UnmanagedType.I1)]
        public static extern bool UserEnabledMkldnn(IntPtr context);
    }
}
