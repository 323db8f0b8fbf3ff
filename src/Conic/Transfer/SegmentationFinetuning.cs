using System.Diagnostics;
using Conic.Data;
using Conic.Evaluation;
using Conic.Methods;
using Conic.Models;
using Conic.Runtime;
using Conic.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Conic.Transfer;

/// <summary>Where a fine-tune run stands, and what rebuilds its network without the pretrained run.</summary>
public sealed record FinetuneCheckpointHeader(int CompletedEpochs, long Step, FinetuneOptions Options, BackboneOptions Backbone,
                                              IReadOnlyList<string> ClassNames, float[] ChannelMean, float[] ChannelStd, int Side,
                                              double TrainingSeconds);

/// <summary>A fine-tuned segmenter's scores on the validation split.</summary>
public sealed record SegmentationResult(string Task, double MeanIoU, double PixelAccuracy, IReadOnlyList<ClassScore> Classes,
                                        int TrainImages, int ValidationImages, int Side, double TrainImagesPerSecond,
                                        double InferenceImagesPerSecond, string Initialisation, bool FrozenBackbone);

/// <summary>One class's IoU (null when the class is neither in the truth nor predicted) and its share of the validation pixels.</summary>
public sealed record ClassScore(string Name, double? IoU, double PixelShare);

/// <summary>
/// Trains a <see cref="SegmentationNetwork"/> (pretrained or random backbone + FPN decoder) end to end with per-pixel
/// cross-entropy (mask value 255 ignored), random horizontal flips, momentum SGD with a one-epoch warm-up and cosine
/// decay; validates every epoch (mIoU, pixel accuracy), checkpoints every epoch (a killed run resumes), and writes
/// eval.json, metrics.csv and predictions.png into the run folder.
/// </summary>
public static class SegmentationFinetuning
{
    const string ModelPrefix = "model.", OptimizerPrefix = "optimizer.";

    public static SegmentationResult Run(FinetuneOptions options, string runDirectory, bool resume, TextWriter log)
    {
        if (options.Problem() is string problem) throw new ConicException(problem);
        var folder = new RunFolder(runDirectory);
        using var runLock = folder.Lock();
        bool continues = folder.ContinuesCheckpoint(resume, path => $"fine-tuned for {Checkpoint.ReadHeader<FinetuneCheckpointHeader>(path).CompletedEpochs} epochs");
        var header = continues ? Checkpoint.ReadHeader<FinetuneCheckpointHeader>(folder.Checkpoint) : null;
        // A resumed run keeps its plan; only the epochs (to add some) and where it runs may change.
        if (header != null) options = header.Options with { Epochs = options.Epochs, Device = options.Device, Threads = options.Threads };
        var device = TorchRuntime.Initialize(options.Device, options.Threads);

        using var pretrained = header == null && options.InitRun != null ? PretrainedModel.Load(options.InitRun, options.Device, options.Threads) : null;
        int? channels = header?.Backbone.InputChannels ?? pretrained?.Backbone.Options.InputChannels;
        using var data = SegmentationDataset.Load(options.DataPath, channels, header?.Side ?? options.ImageSize);
        if (header != null && !header.ClassNames.SequenceEqual(data.ClassNames))
            throw new ConicException($"{options.DataPath}: its classes differ from those the checkpoint in {runDirectory} was trained on");
        var normalization = header != null ? new InputNormalization(header.ChannelMean, header.ChannelStd)
            : pretrained?.Normalization ?? Statistics(data.Train);

        manual_seed(options.Seed);
        var backbone = pretrained?.Backbone ?? new ResNet((header?.Backbone ?? options.Backbone) with { InputChannels = data.Train.Channels });
        using var network = new SegmentationNetwork(backbone, data.Classes);
        network.to(device);
        if (options.FreezeBackbone)
            foreach (var parameter in backbone.parameters()) parameter.requires_grad = false;
        var trained = options.FreezeBackbone ? network.HeadParameters.ToList() : network.parameters().ToList();
        using var optimizer = new MomentumSgd([new ParameterGroup("all", trained, 1, options.WeightDecay)], options.Momentum);
        var state = network.state_dict().Select(kv => (ModelPrefix + kv.Key, kv.Value))
            .Concat(optimizer.NamedBuffers().Select(b => (OptimizerPrefix + b.Name, b.Buffer))).ToDictionary();
        if (header != null)
        {
            Checkpoint.Load<FinetuneCheckpointHeader>(folder.Checkpoint, state);
            log.WriteLine($"resuming {folder.Checkpoint} after epoch {header.CompletedEpochs}");
        }
        else RunJson.WriteAtomically(folder.Config, options);

        var metrics = new MetricsCsv(folder.Metrics);
        metrics.StartAfter(header?.CompletedEpochs ?? 0);
        int stepsPerEpoch = (data.Train.Count + options.BatchSize - 1) / options.BatchSize;
        long totalSteps = (long)stepsPerEpoch * options.Epochs, step = header?.Step ?? 0;
        double trainingSeconds = header?.TrainingSeconds ?? 0, imagesPerSecond = 0;
        log.WriteLine($"segmentation: {data.Train.Count} train / {data.Validation.Count} val images of {data.Train.Side} px, {data.Classes} classes; " +
                      $"backbone {(options.InitRun ?? "random")}{(options.FreezeBackbone ? " (frozen)" : "")}");
        for (int epoch = (header?.CompletedEpochs ?? 0) + 1; epoch <= options.Epochs; epoch++)
        {
            var clock = Stopwatch.StartNew();
            network.train();
            if (options.FreezeBackbone) backbone.eval();
            var order = Permutation(data.Train.Count, Seeds.Derive(options.Seed, epoch, 0));
            var flips = new Random(Seeds.Derive(options.Seed, epoch, 1));
            double lossSum = 0, rate = 0;
            for (int start = 0; start < order.Length; start += options.BatchSize, step++)
            {
                using var scope = NewDisposeScope();
                var batch = order[start..Math.Min(order.Length, start + options.BatchSize)];
                var flipped = batch.Select(_ => flips.Next(2) == 1).ToArray();
                var (images, masks) = Batch(data.Train, batch, flipped, normalization, device);
                rate = LearningRate(options.LearningRate, step, stepsPerEpoch, totalSteps);
                optimizer.ZeroGrad();
                var loss = nn.functional.cross_entropy(network.call(images), masks, ignore_index: SegmentationDataset.IgnoreIndex);
                loss.backward();
                optimizer.Step(rate);
                lossSum += loss.item<float>() * batch.Length;
            }
            double seconds = clock.Elapsed.TotalSeconds;
            trainingSeconds += seconds;
            imagesPerSecond = data.Train.Count / seconds;
            var scores = Validate(network, data.Validation, data.Classes, normalization, device, options.BatchSize);
            double loss_ = lossSum / data.Train.Count;
            if (!double.IsFinite(loss_)) throw new ConicException($"{runDirectory}: the loss became {loss_} in epoch {epoch}; lower --lr");
            metrics.Append(new EpochMetrics(epoch, step, rate, loss_, [("val_miou", scores.MeanIoU), ("val_pixel_accuracy", scores.PixelAccuracy)],
                                            imagesPerSecond, seconds, ElapsedMinutes: trainingSeconds / 60));
            Checkpoint.Save(folder.Checkpoint, new FinetuneCheckpointHeader(epoch, step, options, backbone.Options, data.ClassNames,
                                                                            normalization.Mean, normalization.Std, data.Train.Side, trainingSeconds),
                            state.Select(kv => (kv.Key, kv.Value)));
            log.WriteLine($"epoch {epoch}/{options.Epochs} loss {loss_:F4} lr {rate:G3} {imagesPerSecond:F0} img/s {seconds:F1}s  val mIoU {100 * scores.MeanIoU:F2} % pixel accuracy {100 * scores.PixelAccuracy:F2} %");
        }

        var clockInference = Stopwatch.StartNew();
        var final = Validate(network, data.Validation, data.Classes, normalization, device, options.BatchSize);
        double inferencePerSecond = data.Validation.Count / clockInference.Elapsed.TotalSeconds;
        var pixels = final.TruePixels;
        long total = Math.Max(1, pixels.Sum());
        var classScores = data.ClassNames.Select((name, c) => new ClassScore(name, double.IsNaN(final.ClassIoU[c]) ? null : final.ClassIoU[c], (double)pixels[c] / total)).ToArray();
        if (imagesPerSecond == 0) imagesPerSecond = TrainSpeedFromMetrics(metrics);
        var result = new SegmentationResult("segmentation", final.MeanIoU, final.PixelAccuracy, classScores, data.Train.Count, data.Validation.Count,
                                            data.Train.Side, imagesPerSecond, inferencePerSecond, options.InitRun ?? "random", options.FreezeBackbone);
        RunJson.WriteAtomically(folder.Evaluation, result);
        SegmentationPictures.Write(Path.Combine(runDirectory, "predictions.png"), network, data.Validation, data.ClassNames, normalization, device);
        foreach (var absent in classScores.Where(c => c.PixelShare == 0))
            log.WriteLine($"note: class '{absent.Name}' has no validation pixels; mIoU covers the classes present or predicted");
        return result;
    }

    static double TrainSpeedFromMetrics(MetricsCsv metrics) => metrics.Column("images_per_second").Select(c => c.Value).DefaultIfEmpty(0).Last();

    /// <summary>Warm-up over the first epoch, then cosine to zero at the last step.</summary>
    static double LearningRate(double peak, long step, int warmupSteps, long totalSteps) =>
        step < warmupSteps ? peak * (step + 1) / warmupSteps
            : 0.5 * peak * (1 + Math.Cos(Math.PI * (step - warmupSteps) / Math.Max(1, totalSteps - warmupSteps)));

    static int[] Permutation(int count, int seed)
    {
        var order = Enumerable.Range(0, count).ToArray();
        new Random(seed).Shuffle(order);
        return order;
    }

    static InputNormalization Statistics(SegmentationDataset train)
    {
        using var scope = NewDisposeScope();
        var pixels = train.Images.to_type(ScalarType.Float32).div_(255f);
        var mean = pixels.mean([0, 2, 3]).data<float>().ToArray();
        var std = pixels.std([0, 2, 3]).clamp_min(1e-3).data<float>().ToArray();
        return new InputNormalization(mean, std);
    }

    /// <summary>Normalised images and int64 masks of <paramref name="indices"/>, each flipped left-right where <paramref name="flipped"/> says.</summary>
    static (Tensor Images, Tensor Masks) Batch(SegmentationDataset data, int[] indices, bool[] flipped, InputNormalization normalization, Device device)
    {
        var index = tensor(indices.Select(i => (long)i).ToArray());
        var images = data.Images.index_select(0, index).to(device);
        var masks = data.Masks.index_select(0, index).to(device);
        if (flipped.Any(f => f))
        {
            var flip = tensor(flipped, device: device);
            images = where(flip.view(-1, 1, 1, 1), images.flip(3), images);
            masks = where(flip.view(-1, 1, 1), masks.flip(2), masks);
        }
        return (normalization.FromPixels(images), masks.to_type(ScalarType.Int64));
    }

    internal static SegmentationMetrics Validate(SegmentationNetwork network, SegmentationDataset data, int classes,
                                                 InputNormalization normalization, Device device, int batchSize)
    {
        network.eval();
        var scores = new SegmentationMetrics(classes);
        using var noGrad = no_grad();
        for (int start = 0; start < data.Count; start += batchSize)
        {
            using var scope = NewDisposeScope();
            var batch = Enumerable.Range(start, Math.Min(batchSize, data.Count - start)).ToArray();
            var (images, masks) = Batch(data, batch, new bool[batch.Length], normalization, device);
            scores.Add(network.call(images).argmax(1), masks);
        }
        return scores;
    }
}
