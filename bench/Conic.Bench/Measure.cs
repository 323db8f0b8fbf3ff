using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Conic.Runtime;
using static TorchSharp.torch;

namespace Conic.Bench;

static class Measure
{
    /// <summary>Median wall time in seconds of <paramref name="repeats"/> runs after <paramref name="warmup"/> runs, each in its own dispose scope.</summary>
    public static double MedianSeconds(Action run, int repeats, int warmup = 1)
    {
        for (int i = 0; i < warmup; i++) Scoped(run);
        var times = new double[repeats];
        for (int i = 0; i < repeats; i++)
        {
            var clock = Stopwatch.StartNew();
            Scoped(run);
            times[i] = clock.Elapsed.TotalSeconds;
        }
        Array.Sort(times);
        return times[repeats / 2];
    }

    /// <summary>Resident memory the run adds at its peak, in MiB (null where /proc is absent).</summary>
    public static double? PeakExtraMiB(Action run)
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        long? before = ProcessMemory.ResidentBytes();
        ProcessMemory.ResetPeak();
        Scoped(run);
        long? peak = ProcessMemory.PeakResidentBytes();
        return before is long b && peak is long p ? Math.Max(0, p - b) / 1048576.0 : null;
    }

    static void Scoped(Action run)
    {
        using var scope = NewDisposeScope();
        run();
    }

    /// <summary>
    /// This CPU's float32 fused multiply-add peak in FLOP/s (2 per FMA): one thread per core running independent
    /// FMA chains on the widest vectors the CPU has, so the real clock (turbo included) and the number of FMA pipes
    /// are measured, not assumed. Null where the CPU has no FMA instructions.
    /// </summary>
    public static double? FmaPeakFlopsPerSecond(double seconds = 1.0)
    {
        if (!Fma.IsSupported) return null;
        int threads = Environment.ProcessorCount;
        var flops = new double[threads];
        Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
            flops[t] = Avx512F.IsSupported ? FmaChains512(seconds) : FmaChains256(seconds));
        return flops.Sum();
    }

    // Chains of 2^20 FMAs, twelve at a time, independent so that they hide the FMA latency on every pipe. The chains
    // run in a method without calls (a call would make the JIT keep them in memory) on concrete vector types; one copy
    // per vector width because the fused multiply-add intrinsics are per-ISA classes (Avx512F, Fma) without a shared
    // interface that guarantees a fused instruction.
    const int ChainLength = 1 << 20, ChainCount = 12;

    static double FmaChains512(double seconds) => FlopsOf(() => Chains512(0.5f), seconds, ChainCount * ChainLength * 2.0 * Vector512<float>.Count);
    static double FmaChains256(double seconds) => FlopsOf(() => Chains256(0.5f), seconds, ChainCount * ChainLength * 2.0 * Vector256<float>.Count);

    static double FlopsOf(Func<float> chains, double seconds, double flopsPerCall)
    {
        chains();
        long calls = 0;
        float sum = 0;
        var clock = Stopwatch.StartNew();
        for (; clock.Elapsed.TotalSeconds < seconds; calls++) sum += chains();
        GC.KeepAlive(sum);
        return calls * flopsPerCall / clock.Elapsed.TotalSeconds;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static float Chains512(float start)
    {
        Vector512<float> a = Vector512.Create(0.999999f), b = Vector512.Create(1e-7f);
        Vector512<float> x0 = Vector512.Create(start), x1 = x0 + b, x2 = x1 + b, x3 = x2 + b, x4 = x3 + b, x5 = x4 + b;
        Vector512<float> x6 = x5 + b, x7 = x6 + b, x8 = x7 + b, x9 = x8 + b, x10 = x9 + b, x11 = x10 + b;
        for (int i = 0; i < ChainLength; i++)
        {
            x0 = Avx512F.FusedMultiplyAdd(x0, a, b); x1 = Avx512F.FusedMultiplyAdd(x1, a, b); x2 = Avx512F.FusedMultiplyAdd(x2, a, b);
            x3 = Avx512F.FusedMultiplyAdd(x3, a, b); x4 = Avx512F.FusedMultiplyAdd(x4, a, b); x5 = Avx512F.FusedMultiplyAdd(x5, a, b);
            x6 = Avx512F.FusedMultiplyAdd(x6, a, b); x7 = Avx512F.FusedMultiplyAdd(x7, a, b); x8 = Avx512F.FusedMultiplyAdd(x8, a, b);
            x9 = Avx512F.FusedMultiplyAdd(x9, a, b); x10 = Avx512F.FusedMultiplyAdd(x10, a, b); x11 = Avx512F.FusedMultiplyAdd(x11, a, b);
        }
        return Vector512.Sum(x0 + x1 + x2 + x3 + x4 + x5 + x6 + x7 + x8 + x9 + x10 + x11);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static float Chains256(float start)
    {
        Vector256<float> a = Vector256.Create(0.999999f), b = Vector256.Create(1e-7f);
        Vector256<float> x0 = Vector256.Create(start), x1 = x0 + b, x2 = x1 + b, x3 = x2 + b, x4 = x3 + b, x5 = x4 + b;
        Vector256<float> x6 = x5 + b, x7 = x6 + b, x8 = x7 + b, x9 = x8 + b, x10 = x9 + b, x11 = x10 + b;
        for (int i = 0; i < ChainLength; i++)
        {
            x0 = Fma.MultiplyAdd(x0, a, b); x1 = Fma.MultiplyAdd(x1, a, b); x2 = Fma.MultiplyAdd(x2, a, b);
            x3 = Fma.MultiplyAdd(x3, a, b); x4 = Fma.MultiplyAdd(x4, a, b); x5 = Fma.MultiplyAdd(x5, a, b);
            x6 = Fma.MultiplyAdd(x6, a, b); x7 = Fma.MultiplyAdd(x7, a, b); x8 = Fma.MultiplyAdd(x8, a, b);
            x9 = Fma.MultiplyAdd(x9, a, b); x10 = Fma.MultiplyAdd(x10, a, b); x11 = Fma.MultiplyAdd(x11, a, b);
        }
        return Vector256.Sum(x0 + x1 + x2 + x3 + x4 + x5 + x6 + x7 + x8 + x9 + x10 + x11);
    }

    /// <summary>Single-precision matrix-multiply speed of this machine: a square product large enough to reach peak.</summary>
    public static double SgemmFlopsPerSecond(int size = 2048)
    {
        var a = randn(size, size);
        var b = randn(size, size);
        double seconds = MedianSeconds(() => a.matmul(b), repeats: 5);
        return 2.0 * size * size * size / seconds;
    }
}
