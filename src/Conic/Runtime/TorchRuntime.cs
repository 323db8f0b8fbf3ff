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
            if (threads > 0) set_num_threads(threads);
            _initialized = true;
        }
        if (device.StartsWith("cuda", StringComparison.Ordinal))
        {
            InitializeDeviceType(DeviceType.CUDA);
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
    }
}
