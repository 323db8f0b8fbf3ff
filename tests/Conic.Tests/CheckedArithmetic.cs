using System.Runtime.CompilerServices;
using Conic.Models;
using Conic.Runtime;

namespace Conic.Tests;

/// <summary>
/// Tests that build networks themselves (not through the trainer, which checks its own) compute in float32 with the
/// kernels the arithmetic check finds right on this CPU for the suite's small networks: oneDNN's AVX-512 kernels give
/// NaN at width 4 and 8 with two threads on Zen 5, and the suite must pass there too.
/// </summary>
static class CheckedArithmetic
{
    [ModuleInitializer]
    internal static void ChooseForTheSuite()
    {
        TorchRuntime.Initialize("cpu", 0);
        foreach (int width in new[] { 4, 8 })
        {
            TorchSharp.torch.manual_seed(0);
            using var network = new ResNet(new BackboneOptions { Width = width });
            var choice = ArithmeticCheck.Choose(network, 16, 16, 32, Precision.Float32, ConvolutionKernels.Auto, cpuHasBFloat16: false);
            choice.Evaluation.Apply([]);
            if (!choice.Evaluation.OneDnn) return;  // native kernels from here on, for every width
        }
    }
}
