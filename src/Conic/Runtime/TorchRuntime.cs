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
            FixMmapThreshold();
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

    /// <summary>
    /// glibc raises its mmap threshold each time a large block is freed, after which blocks of tens of MB come from
    /// the heap and stay resident when freed: resident memory then grows step after step (measured: +600 MB per 20
    /// t-SNE iterations on 1,500 points, flat with a fixed threshold). Setting the threshold fixes it at 128 KiB, so
    /// every tensor of that size or more is returned to the system when disposed.
    /// </summary>
    static void FixMmapThreshold()
    {
        if (!OperatingSystem.IsLinux()) return;
        const int mmapThreshold = -3; // M_MMAP_THRESHOLD in malloc.h
        try
        {
            NativeMethods.MallOpt(mmapThreshold, 128 * 1024);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            // Not glibc (e.g. musl): its allocator has no dynamic threshold to fix.
        }
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
        [DllImport("libc", EntryPoint = "mallopt")]
        public static extern int MallOpt(int parameter, int value);

        [DllImport("libtorch_cpu", EntryPoint = "_ZN2at13globalContextEv")]
        public static extern IntPtr GlobalContext();

        [DllImport("libtorch_cpu", EntryPoint = "_ZN2at7Context16setFlushDenormalEb")]
        [return: MarshalAs(UnmanagedType.I1)]
        public static extern bool SetFlushDenormal(IntPtr context, [MarshalAs(UnmanagedType.I1)] bool on);
    }
}
