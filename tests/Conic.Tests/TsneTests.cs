using Conic.Evaluation;
using static TorchSharp.torch;
using static Conic.Runtime.KeptScalars;

namespace Conic.Tests;

public class TsneTests
{
    [Fact]
    public void TsneKeepsSeparatedClustersApartAndIsSeeded()
    {
        // Three Gaussian clusters in 20-D whose centres are far apart relative to their spread.
        manual_seed(0);
        var centres = randn(3, 20).mul(Kept(10));
        var labels = arange(Kept(0), Kept(90), Kept(1), dtype: ScalarType.Int64).div(Kept(30), rounding_mode: RoundingMode.floor);
        var points = centres.index_select(0, labels).add(randn(90, 20), Kept(1));

        var embedding = Tsne.Embed(points, seed: 1, perplexity: 10, iterations: 400);
        Assert.Equal(new long[] { 90, 2 }, embedding.shape);
        Assert.True(embedding.isfinite().all().item<bool>());

        // Every point's nearest neighbour in the plane is from its own cluster.
        var distances = cdist(embedding, embedding).add(eye(90).mul(Kept(1e9)), Kept(1));
        var nearest = distances.argmin(1);
        double agreement = labels.index_select(0, nearest).eq(labels).to_type(ScalarType.Float32).mean().item<float>();
        Assert.True(agreement >= 0.98, $"nearest neighbours agree with clusters for {agreement:P0}");
        Assert.True(Tsne.Embed(points, seed: 1, perplexity: 10, iterations: 400).eq(embedding).all().item<bool>());
    }
}
