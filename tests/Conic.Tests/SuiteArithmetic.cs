using System.Reflection;
using System.Runtime.CompilerServices;
using Conic.Models;
using Conic.Runtime;
using Xunit.Sdk;

[assembly: Conic.Tests.SuiteArithmetic.NativeKernelsBeforeEveryTest]

namespace Conic.Tests;

/// <summary>
/// The networks the tests build themselves compute with libtorch's native convolution kernels on every CPU. oneDNN's
/// AVX-512 kernels give NaN at widths 4 and 8 with two threads on AMD Zen 5, and the fault comes and goes with the
/// weights: a check of six networks at start-up passed on a CI machine whose later tests then trained to NaN, so no
/// start-up check can clear oneDNN for hundreds of tests. oneDNN stays tested where Conic itself chooses it (every
/// command-line test runs the arithmetic check on its own network) and by the layout and check tests, which switch it
/// on themselves.
/// </summary>
static class SuiteArithmetic
{
    /// <summary>What in-process trainings use, so that their own check cannot switch oneDNN on for the tests after them.</summary>
    public const ConvolutionKernels Kernels = ConvolutionKernels.Native;

    [ModuleInitializer]
    internal static void Initialize() => TorchRuntime.Initialize("cpu", 0);

    /// <summary>Switches oneDNN off again before each test: loading a model runs its own check, which may switch it on for the process.</summary>
    [AttributeUsage(AttributeTargets.Assembly)]
    internal sealed class NativeKernelsBeforeEveryTestAttribute : BeforeAfterTestAttribute
    {
        public override void Before(MethodInfo methodUnderTest) => TorchRuntime.SetOneDnn(false);
    }
}
