using Conic.Data;
using Conic.Training;
using static TorchSharp.torch;

namespace Conic.Evaluation;

/// <summary>
/// Online check during pretraining: the same weighted kNN as the evaluation, on fixed random subsets of the labelled
/// train split (the neighbours) and test split (the queries), small enough to run every few epochs. It reads the
/// model only (eval-mode BatchNorm, no gradients, no random numbers), so training is the same with or without it.
/// </summary>
public sealed class KnnMonitor
{
    readonly ImageDataset _bank;
    readonly ImageDataset _queries;
    readonly int _classes;

    KnnMonitor(ImageDataset bank, ImageDataset queries)
    {
        _bank = bank;
        _queries = queries;
        _classes = Math.Max(bank.ClassCount, queries.ClassCount);
    }

    /// <summary>Labelled training images whose features are the neighbours.</summary>
    public int BankSize => _bank.Count;
    /// <summary>Labelled test images classified against them.</summary>
    public int QuerySize => _queries.Count;

    /// <summary>A monitor over up to <paramref name="bankSize"/> train and <paramref name="querySize"/> test images; null when labels or a test split are missing.</summary>
    public static KnnMonitor? Create(DatasetSplits data, int seed, int bankSize = 10_000, int querySize = 2_000)
    {
        if (data.Test?.Labels == null || data.Train.Labels == null) return null;
        return new KnnMonitor(data.Train.Subset(data.Train.SampleIndices(bankSize, seed)), data.Test.Subset(data.Test.SampleIndices(querySize, seed)));
    }

    /// <summary>Top-1 accuracy (a fraction); leaves the model in training mode.</summary>
    public double Measure(PretrainedModel model)
    {
        using var scope = NewDisposeScope();
        var bankLabels = tensor(_bank.Labels!.Select(l => (long)l).ToArray());
        var queryLabels = tensor(_queries.Labels!.Select(l => (long)l).ToArray());
        double top1 = KnnClassifier.Accuracy(FeatureExtractor.Extract(model, _bank), bankLabels,
                                             FeatureExtractor.Extract(model, _queries), queryLabels, _classes);
        model.Method.train();
        return top1;
    }
}
