using Conic.Models;
using Conic.Runtime;
using static TorchSharp.torch;
using static Conic.Runtime.KeptScalars;

namespace Conic.Bench;

/// <summary>
/// The arithmetic check's measurements for several widths and batch sizes, and each arithmetic's speed on a backbone
/// forward and backward: what the check's tolerances and the safe arithmetic's cost rest on.
/// </summary>
static class ArithmeticBenchmark
{
    static readonly ConvolutionArithmetic[] All = [ConvolutionArithmetic.BFloat16OneDnn, ConvolutionArithmetic.Float32OneDnn, ConvolutionArithmetic.Float32Native];

    public static void Run(int[] widths, int[] batches, int size, int repeats, TextWriter output)
    {
        TorchRuntime.Initialize("cpu", 0);
        output.WriteLine($"arithmetic: ResNet-18, small stem, 1x{size}x{size}, {get_num_threads()} threads, {TorchRuntime.CpuDescription()}");
        output.WriteLine();
        output.WriteLine("| width | images | arithmetic | worst error from float64 | where | agrees | backbone fwd+bwd images/s |");
        output.WriteLine("|---|---|---|---|---|---|---|");
        foreach (int width in widths)
        foreach (int batch in batches)
        {
            manual_seed(0);
            using var backbone = new ResNet(new BackboneOptions { Width = width });
            foreach (var trial in ArithmeticCheck.Measure(backbone, size, size, batch, All))
            {
                double speed = batch / Measure.MedianSeconds(() => Step(backbone, trial.Arithmetic, batch, size), repeats);
                output.WriteLine($"| {width} | {batch} | {trial.Arithmetic} | {trial.Error:P4} | {trial.Where} | {(trial.Agrees ? "yes" : "no")} | {speed:F0} |");
            }
        }
        ConvolutionArithmetic.Float32OneDnn.Apply([]);
    }

    static void Step(ResNet backbone, ConvolutionArithmetic arithmetic, int batch, int size)
    {
        arithmetic.Apply([backbone]);
        backbone.train();
        backbone.zero_grad();
        backbone.call(randn(batch, 1, size, size)).pow(Kept(2)).sum().backward();
        backbone.BFloat16Compute = false;
    }
}
