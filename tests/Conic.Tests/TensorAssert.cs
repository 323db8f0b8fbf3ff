using static TorchSharp.torch;

namespace Conic.Tests;

static class TensorAssert
{
    /// <summary>
    /// Equal up to float32 rounding, measured against the tensor's largest entry: two orders of summation leave errors
    /// of ~1e-7 of the largest terms on every entry, which an entry-wise tolerance fails on entries near zero.
    /// </summary>
    public static void RelativelyClose(Tensor expected, Tensor actual, string what, double relative = 1e-5)
    {
        double scale = expected.abs().max().to(ScalarType.Float64).item<double>();
        double error = expected.sub(actual).abs().max().to(ScalarType.Float64).item<double>();
        Assert.True(error <= relative * scale, $"{what}: max difference {error:g3} against largest entry {scale:g3}");
    }
}
