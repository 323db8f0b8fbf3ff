using System.Diagnostics;
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

    /// <summary>Single-precision matrix-multiply speed of this machine: a square product large enough to reach peak.</summary>
    public static double SgemmFlopsPerSecond(int size = 2048)
    {
        var a = randn(size, size);
        var b = randn(size, size);
        double seconds = MedianSeconds(() => a.matmul(b), repeats: 5);
        return 2.0 * size * size * size / seconds;
    }
}
