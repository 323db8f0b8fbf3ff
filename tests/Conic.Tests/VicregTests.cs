using Conic.Methods;
using static TorchSharp.torch;
using static Conic.Runtime.KeptScalars;

namespace Conic.Tests;

public class VicregTests
{
    [Fact]
    public void TermsMatchTheirDefinitionsOnAHandWorkedBatch()
    {
        // Two views of three 2-d embeddings. View 1 columns: (0, 1, 2) and (0, 0, 3); view 2 = view 1 + 1.
        var first = tensor(new float[] { 0, 0, 1, 0, 2, 3 }, 3, 2);
        var second = first.add(Kept(1), Kept(1));
        var (invariance, variance, covariance) = Losses.VicregLosses.Terms(first, second);
        Assert.Equal(1.0, invariance.item<float>(), 5);
        // Unbiased variances 1 and 3: std sqrt(1.0001) and sqrt(3.0001), so only the first dimension's hinge is (almost) 0.
        double hinge = (Math.Max(0, 1 - Math.Sqrt(1.0001)) + Math.Max(0, 1 - Math.Sqrt(3.0001))) / 2;
        Assert.Equal(hinge, variance.item<float>(), 5);
        // Covariance of the columns: sum((x - 1)(y - 1)) / 2 = ((-1)(-1) + 0 + (1)(2)) / 2 = 1.5; squared, both
        // off-diagonal entries, divided by D = 2, for each of the two (equal) views.
        Assert.Equal(2 * (2 * 1.5 * 1.5 / 2), covariance.item<float>(), 4);
    }

    [Fact]
    public void CollapsedEmbeddingsArePunishedByTheVarianceTermAlone()
    {
        var collapsed = ones(8, 4);
        var (invariance, variance, covariance) = Losses.VicregLosses.Terms(collapsed, collapsed);
        Assert.Equal(0.0, invariance.item<float>(), 6);
        Assert.Equal(0.0, covariance.item<float>(), 6);
        Assert.Equal(1 - Math.Sqrt(1e-4), variance.item<float>(), 5);
    }
}
