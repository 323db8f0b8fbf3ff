using System.Diagnostics;
using Conic.Data;
using Conic.Training;
using static TorchSharp.torch;
using static Conic.Runtime.KeptScalars;

namespace Conic.Evaluation;

/// <summary>What evaluation measured; written to eval.json in the run folder.</summary>
/// <param name="RawPixelKnnTop1">The same kNN on raw pixels scaled to [0, 1]: the floor a representation must beat.</param>
/// <param name="StandardizedPixelKnnTop1">The same kNN on pixels standardised with the train mean and std (a stricter floor).</param>
/// <param name="RawPixelLinearTop1">The same linear probe on raw pixels: the floor of the linear number (null in eval.json from before 2026-12-01).</param>
public sealed record EvaluationResult(double KnnTop1, double LinearTop1, double RawPixelKnnTop1, double StandardizedPixelKnnTop1, int KnnK, double KnnTemperature,
                                      int TrainImages, int TestImages, int FeatureDim, double Seconds, double? RawPixelLinearTop1 = null);

/// <summary>Weighted kNN and a linear probe on frozen backbone features: trained on the train split, measured on the test split.</summary>
public static class Evaluator
{
    /// <summary>Evaluates the model saved in a run folder and writes eval.json there.</summary>
    public static EvaluationResult EvaluateRun(PretrainedModel model, string runDirectory, DatasetSplits data, TextWriter log)
    {
        var result = Evaluate(model, data, log);
        RunJson.WriteAtomically(new Runtime.RunFolder(runDirectory).Evaluation, result);
        return result;
    }

    /// <summary>Measures <paramref name="model"/>'s frozen features on <paramref name="data"/>: weighted kNN (k, temperature), the linear probe and the raw-pixel floors.</summary>
    public static EvaluationResult Evaluate(PretrainedModel model, DatasetSplits data, TextWriter log,
                                            int k = 200, double temperature = 0.07, LinearProbeOptions? probe = null)
    {
        var test = data.Test ?? throw new ConicException($"{data.Train.Source}: evaluation needs a test split (t10k-* IDX files or a test/ folder)");
        if (data.Train.Labels == null) throw new ConicException($"{data.Train.Source}: evaluation needs labels for the train split");
        if (test.Labels == null) throw new ConicException($"{test.Source}: evaluation needs labels for the test split");
        if (test.Channels != model.Backbone.Options.InputChannels)
            throw new ConicException($"{test.Source}: images have {test.Channels} channels, the model was trained on {model.Backbone.Options.InputChannels}");
        // Accuracy over one class, or over images that are all the same, is 100 % or chance by construction.
        if (data.Train.Labels.Distinct().Count() < 2)
            throw new ConicException($"{data.Train.Source}: evaluation needs at least two classes; every training image has the same label");
        if (AllTheSame(data.Train))
            throw new ConicException($"{data.Train.Source}: every training image is the same image; there is nothing to evaluate");

        var clock = Stopwatch.StartNew();
        using var scope = NewDisposeScope();
        log.WriteLine($"evaluating: features of {data.Train.Count} train and {test.Count} test images");
        var trainFeatures = FeatureExtractor.Extract(model, data.Train);
        var testFeatures = FeatureExtractor.Extract(model, test);
        log.WriteLine($"features: {clock.Elapsed.TotalSeconds:F1} s");
        var trainLabels = Labels(data.Train);
        var testLabels = Labels(test);
        int classes = Math.Max(data.Train.ClassCount, test.ClassCount);

        double knn = KnnClassifier.Accuracy(trainFeatures, trainLabels, testFeatures, testLabels, classes, k, temperature);
        log.WriteLine($"kNN (k={k}, T={temperature}) top-1: {knn:P2}");
        ImageDataset floorTrain = PixelFloorSet(data.Train), floorTest = PixelFloorSet(test);
        var trainImages = floorTrain.Gather(Enumerable.Range(0, floorTrain.Count).ToArray());
        var testImages = floorTest.Gather(Enumerable.Range(0, floorTest.Count).ToArray());
        double Pixels(bool standardize)
        {
            using var pixelScope = NewDisposeScope();
            return KnnClassifier.Accuracy(PixelFeatures(model, trainImages, standardize), Labels(floorTrain),
                                          PixelFeatures(model, testImages, standardize), Labels(floorTest), classes, k, temperature);
        }
        double rawPixels = Pixels(standardize: false), standardizedPixels = Pixels(standardize: true);
        log.WriteLine($"pixel kNN top-1 (floors): raw {rawPixels:P2}, standardised {standardizedPixels:P2}" +
                      (floorTrain.Count < data.Train.Count || floorTest.Count < test.Count ? $" (on {floorTrain.Count} train and {floorTest.Count} test images)" : ""));
        log.WriteLine($"linear probe: training a {trainFeatures.shape[1]}-to-{classes} classifier on {data.Train.Count} frozen features");
        double linear = LinearProbe.Accuracy(trainFeatures, trainLabels, testFeatures, testLabels, classes,
                                             probe ?? new LinearProbeOptions { Seed = model.Options.Seed });
        log.WriteLine($"linear probe top-1: {linear:P2}");
        log.WriteLine($"linear probe on raw pixels (floor): training a {trainImages[0].numel()}-to-{classes} classifier on {floorTrain.Count} images");
        double pixelLinear = LinearProbe.Accuracy(PixelFeatures(model, trainImages, standardize: false), Labels(floorTrain),
                                                  PixelFeatures(model, testImages, standardize: false), Labels(floorTest), classes,
                                                  probe ?? new LinearProbeOptions { Seed = model.Options.Seed });
        log.WriteLine($"linear probe on raw pixels top-1: {pixelLinear:P2}");
        return new EvaluationResult(knn, linear, rawPixels, standardizedPixels, k, temperature, data.Train.Count, test.Count, (int)trainFeatures.shape[1],
                                    clock.Elapsed.TotalSeconds, pixelLinear);
    }

    /// <summary>
    /// About how long <see cref="Evaluate"/> takes for this model and data on <paramref name="threads"/> threads: the
    /// features of both splits at the time per image measured after a first batch (which pays for oneDNN's kernel
    /// set-up and was seen to make the estimate 10x too long), as the difference between 1,024 and 256 images (so that
    /// a call's fixed cost is not counted per image), plus ten seconds. The sample's time per image runs about 1.5x the
    /// full pass's (early, little-compiled code), which covers the kNN, pixel floors and linear probes (0.55x the
    /// features' time). Fashion-MNIST after two ranks on AMD Zen 4 (2026-12-06), estimate / evaluation: 77 / 71 s
    /// (oneDNN), 80 / 72 s (capped at AVX2), 133 / 114 s (native kernels), features 45–87 s of it; in one process
    /// (10 % held out) 45 / 57 s at width 16 and 162 / 144 s at width 32.
    /// </summary>
    public static double EstimateSeconds(PretrainedModel model, DatasetSplits data, int threads)
    {
        int threadsWere = get_num_threads();
        set_num_threads(threads);
        model.UseEvaluationArithmetic();
        try
        {
            var sample = data.Train.Subset(data.Train.SampleIndices(Math.Min(1024, data.Train.Count), seed: 0));
            double Seconds(int images)
            {
                var clock = Stopwatch.StartNew();
                using (FeatureExtractor.Extract(model, sample.Subset(Enumerable.Range(0, Math.Min(images, sample.Count)).ToArray()))) { }
                return clock.Elapsed.TotalSeconds;
            }
            Seconds(64);
            double small = Seconds(256), large = Seconds(1024);
            double perImage = sample.Count > 256 ? Math.Max(large - small, 0) / (sample.Count - 256) : large / sample.Count;
            return perImage * (data.Train.Count + (data.Test?.Count ?? 0)) + 10;
        }
        finally
        {
            model.Method.train();
            model.Arithmetic.Training.Apply(model.Backbones);
            set_num_threads(threadsWere);
        }
    }

    /// <summary>Whether every image (of a sample of 1,000 for a large set) is the first one.</summary>
    static bool AllTheSame(ImageDataset images)
    {
        using var scope = NewDisposeScope();
        var sample = images.Gather(images.SampleIndices(1_000, seed: 0));
        return sample.eq(sample[..1]).all().item<bool>();
    }

    /// <summary>
    /// The images the pixel floors are measured on: all of an in-memory set; of a streamed set a seeded sample of
    /// <see cref="PixelFloorImages"/> (a floor over every image of a large folder would hold it all in memory).
    /// </summary>
    static ImageDataset PixelFloorSet(ImageDataset images) =>
        images.IsStreamed && images.Count > PixelFloorImages ? images.Subset(images.SampleIndices(PixelFloorImages, seed: 0)) : images;

    const int PixelFloorImages = 10_000;

    static Tensor Labels(ImageDataset images) => tensor(images.Labels!.Select(l => (long)l).ToArray());

    /// <summary>Pixels as features: scaled to [0, 1], or standardised as the encoder's input is.</summary>
    static Tensor PixelFeatures(PretrainedModel model, Tensor images, bool standardize) =>
        (standardize ? model.Normalization.FromPixels(images) : images.to_type(ScalarType.Float32).div_(Kept(255f))).flatten(1);
}
