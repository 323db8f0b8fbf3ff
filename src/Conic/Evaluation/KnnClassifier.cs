using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;
using static Conic.Runtime.KeptScalars;

namespace Conic.Evaluation;

/// <summary>
/// Weighted k-nearest-neighbour classification (Wu et al. 2018, InstDisc): cosine similarity on L2-normalised
/// features; each of the k nearest training samples votes for its label with weight exp(similarity / T).
/// </summary>
public static class KnnClassifier
{
    /// <param name="trainFeatures">[N, D]</param>
    /// <param name="trainLabels">[N] int64</param>
    /// <param name="queryFeatures">[M, D]</param>
    /// <returns>[M] int64 predicted labels.</returns>
    public static Tensor Predict(Tensor trainFeatures, Tensor trainLabels, Tensor queryFeatures, int classCount,
                                 int k = 200, double temperature = 0.07, int chunkSize = 1024)
    {
        using var scope = NewDisposeScope();
        var train = F.normalize(trainFeatures, dim: 1);
        int neighbours = (int)Math.Min(k, train.shape[0]);
        var predictions = new List<Tensor>();
        for (long start = 0; start < queryFeatures.shape[0]; start += chunkSize)
        {
            // One scope per chunk: the [chunk, N] similarity matrix is freed before the next is made.
            using var chunkScope = NewDisposeScope();
            var query = F.normalize(queryFeatures.slice(0, start, Math.Min(start + chunkSize, queryFeatures.shape[0]), 1), dim: 1);
            var (similarity, index) = query.matmul(train.t()).topk(neighbours, dim: 1);
            var votes = zeros(query.shape[0], classCount, device: query.device)
                .scatter_add_(1, trainLabels[index], similarity.div(Kept(temperature)).exp_());
            predictions.Add(votes.argmax(1).MoveToOuterDisposeScope());
        }
        return cat(predictions, 0).MoveToOuterDisposeScope();
    }

    /// <summary>Top-1 accuracy (a fraction) of <see cref="Predict"/> on labelled queries.</summary>
    public static double Accuracy(Tensor trainFeatures, Tensor trainLabels, Tensor queryFeatures, Tensor queryLabels,
                                  int classCount, int k = 200, double temperature = 0.07)
    {
        using var predicted = Predict(trainFeatures, trainLabels, queryFeatures, classCount, k, temperature);
        using var correct = predicted.eq(queryLabels).to_type(ScalarType.Float32).mean();
        return correct.item<float>();
    }
}
