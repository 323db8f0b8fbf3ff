using System.Runtime.CompilerServices;
using Conic.Models;
using Conic.Runtime;

namespace Conic.Tests;

/// <summary>
/// Tests that build networks themselves (not through the trainer, which checks its own) compute in float32 with the
/// kernels the arithmetic check finds right on this CPU for the suite's small networks: oneDNN's AVX-512 kernels give
/// NaN at width 4 and 8 with two threads on Zen 5, and the suite must pass there too. The fault comes and goes with the
/// weights, so oneDNN is kept only when it agrees on three networks of each width; in-process trainings take
/// <see cref="Kernels"/>, so that their own check cannot switch a faulty oneDNN back on for the tests after them.
/// </summary>
static class CheckedArithmetic
{
    /// <summary>Native where the suite's check found oneDNN wrong for its small networks; otherwise the trainer's own check decides.</summary>
    public static ConvolutionKernels Kernels { get; private set; } = ConvolutionKernels.Auto;

    [ModuleInitializer]
    internal static void ChooseForTheSuite()
    {
        TorchRuntime.Initialize("cpu", 0);
        foreach (int width in new[] { 4, 8 })
            for (int seed = 0; seed < 3; seed++)
            {
                TorchSharp.torch.manual_seed(seed);
                using var network = new ResNet(new BackboneOptions { Width = width });
                var choice = ArithmeticCheck.Choose(network, 16, 16, 32, Precision.Float32, ConvolutionKernels.Auto, cpuHasBFloat16: false);
                choice.Evaluation.Apply([]);
                if (choice.Evaluation.OneDnn) continue;
                Kernels = ConvolutionKernels.Native;  // native kernels from here on, for every width
                return;
            }
    }
}
