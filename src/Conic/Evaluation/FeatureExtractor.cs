using Conic.Data;
using Conic.Training;
using static TorchSharp.torch;

namespace Conic.Evaluation;

/// <summary>Frozen backbone features of every image (no augmentation, eval-mode BatchNorm, no gradients).</summary>
public static class FeatureExtractor
{
    /// <param name="progress">Called after each batch with the number of images done.</param>
    /// <returns>float32 [dataset.Count, FeatureDim] on the CPU.</returns>
    public static Tensor Extract(PretrainedModel model, ImageDataset dataset, int batchSize = 512, Action<int>? progress = null)
    {
        model.Method.eval();
        using var noGrad = no_grad();
        var chunks = new List<Tensor>();
        for (int start = 0; start < dataset.Count; start += batchSize)
        {
            using var scope = NewDisposeScope();
            var indices = Enumerable.Range(start, Math.Min(batchSize, dataset.Count - start)).ToArray();
            var images = dataset.Gather(indices).to(model.Device);
            chunks.Add(model.Backbone.call(model.Normalization.FromPixels(images)).cpu().MoveToOuterDisposeScope());
            progress?.Invoke(start + indices.Length);
        }
        var features = cat(chunks, 0);
        foreach (var chunk in chunks) chunk.Dispose();
        return features;
    }
}
