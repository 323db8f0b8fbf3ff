using System.Diagnostics;
using System.Runtime.InteropServices;
using Conic.Models;
using Conic.Runtime;
using TorchSharp;
using static Conic.Runtime.KeptScalars;
using static TorchSharp.torch;

namespace Conic.Bench;

/// <summary>
/// The use-after-free that <see cref="KeptScalars"/> and <see cref="BatchNorms"/> guard against, made frequent: while
/// one thread forces garbage collections without pause, another makes the same call many times, once with the Scalars
/// TorchSharp makes itself and once with kept ones, and counts the calls that failed or returned a wrong number.
/// </summary>
static class ScalarLifetimeBenchmark
{
    public static void Run(int calls, TextWriter output)
    {
        TorchRuntime.Initialize("cpu", 1);
        output.WriteLine($"scalar-lifetime: {calls:N0} calls per row, a second thread forcing garbage collections throughout");
        output.WriteLine("| call | failed | wrong result | seconds |");
        output.WriteLine("|---|---|---|---|");
        using var counts = ones(16, dtype: ScalarType.Int64);
        using var values = ones(16);
        Row(output, calls, "TorchSharp's BatchNorm forward (num_batches_tracked.add_(1))", BatchNormCounts(norm => norm.call(randn(4, 3, 2, 2))));
        Row(output, calls, "Conic's BatchNorms.Apply (kept Scalars)", BatchNormCounts(norm => BatchNorms.Apply(norm, randn(4, 3, 2, 2))));
#pragma warning disable RS0030 // the banned overloads are what this row measures
        Row(output, calls, "int64 x.add(y) (TorchSharp's alpha of 1)", () => counts.add(counts).eq(Kept(2)).all().item<bool>());
        Row(output, calls, "float32 x.add(y) (TorchSharp's alpha of 1)", () => values.add(values).eq(Kept(2)).all().item<bool>());
#pragma warning restore RS0030
        Row(output, calls, "int64 x.add(y, Kept(1))", () => counts.add(counts, Kept(1)).eq(Kept(2)).all().item<bool>());
        Row(output, calls, "float32 x.add(y, Kept(1))", () => values.add(values, Kept(1)).eq(Kept(2)).all().item<bool>());
    }

    /// <summary>A call that trains one BatchNorm layer a step; right when the layer has counted every step so far.</summary>
    static Func<bool> BatchNormCounts(Func<TorchSharp.Modules.BatchNorm2d, Tensor> forward)
    {
        var norm = nn.BatchNorm2d(3);
        long steps = 0;
        return () =>
        {
            forward(norm);
            return norm.num_batches_tracked!.item<long>() == ++steps;
        };
    }

    static void Row(TextWriter output, int calls, string name, Func<bool> call)
    {
        int failed = 0, wrong = 0;
        using var stop = new CancellationTokenSource();
        var collector = new Thread(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                GC.Collect();
                GC.WaitForPendingFinalizers();
            }
        }) { IsBackground = true };
        var clock = Stopwatch.StartNew();
        collector.Start();
        for (int i = 0; i < calls; i++)
        {
            using var scope = NewDisposeScope();
            try
            {
                if (!call()) wrong++;
            }
            catch (ExternalException)
            {
                failed++;
            }
        }
        stop.Cancel();
        collector.Join();
        output.WriteLine($"| {name} | {failed} | {wrong} | {clock.Elapsed.TotalSeconds:F0} |");
    }
}
