using Conic.Data;
using Conic.Evaluation;
using Conic.Models;
using Conic.Runtime;
using Conic.Training;
using static TorchSharp.torch;

namespace Conic.Transfer;

/// <summary>A fine-tuned segmenter's scores on the validation split.</summary>
public sealed record SegmentationResult(double MeanIoU, double PixelAccuracy, IReadOnlyList<ClassScore> Classes, int TrainImages,
                                        int ValidationImages, int Side, double TrainImagesPerSecond, double InferenceImagesPerSecond,
                                        string Initialisation, bool FrozenBackbone);

/// <summary>One class's IoU (null when the class is neither in the truth nor predicted) and its share of the validation pixels.</summary>
public sealed record ClassScore(string Name, double? IoU, double PixelShare);

/// <summary>Semantic segmentation: per-pixel class logits at the input's resolution, cross-entropy with 255 ignored, mIoU.</summary>
sealed class SegmentationTask(SegmentationSplits data) : FinetuneTask
{
    public override string Name => "segmentation";
    public override IReadOnlyList<string> ClassNames => data.ClassNames;
    public override int TrainCount => data.Train.Count;
    public override int Channels => data.Train.Channels;
    public override int Side => data.Train.Side;
    public override InputNormalization Statistics() => Statistics(data.Train.Images);

    public override TaskNetwork CreateNetwork(Backbone backbone) => TransferTask.Segmentation.CreateNetwork(backbone, data.Classes);

    public override Tensor Loss(TaskNetwork network, int[] batch, bool[] flipped, InputNormalization normalization, Device device)
    {
        var (images, masks) = Batch(data.Train, batch, flipped, normalization, device);
        return nn.functional.cross_entropy(network.call(images), masks, ignore_index: SegmentationDataset.IgnoreIndex);
    }

    static (Tensor Images, Tensor Masks) Batch(SegmentationDataset split, int[] batch, bool[] flipped, InputNormalization normalization, Device device) =>
        (normalization.FromPixels(Rows(split.Images, batch, flipped, device)), Rows(split.Masks, batch, flipped, device).to_type(ScalarType.Int64));

    SegmentationMetrics Scores(TaskNetwork network, InputNormalization normalization, Device device, int batchSize)
    {
        network.eval();
        var scores = new SegmentationMetrics(data.Classes);
        using var noGrad = no_grad();
        var validation = data.Validation;
        for (int start = 0; start < validation.Count; start += batchSize)
        {
            using var scope = NewDisposeScope();
            var batch = Enumerable.Range(start, Math.Min(batchSize, validation.Count - start)).ToArray();
            var (images, masks) = Batch(validation, batch, new bool[batch.Length], normalization, device);
            scores.Add(network.call(images).argmax(1), masks);
        }
        return scores;
    }

    public override IReadOnlyList<(string Name, double Value)> Validate(TaskNetwork network, InputNormalization normalization, Device device, int batchSize)
    {
        var scores = Scores(network, normalization, device, batchSize);
        return [("miou", scores.MeanIoU), ("pixel_accuracy", scores.PixelAccuracy)];
    }

    public override IReadOnlyList<string> Finish(TaskNetwork network, InputNormalization normalization, Device device, int batchSize,
                                                 RunFolder folder, FinetuneSummary summary)
    {
        SegmentationMetrics final = null!;
        double seconds = Timed(() => final = Scores(network, normalization, device, batchSize));
        var pixels = final.TruePixels;
        long total = Math.Max(1, pixels.Sum());
        var classes = data.ClassNames.Select((name, c) => new ClassScore(name, double.IsNaN(final.ClassIoU[c]) ? null : final.ClassIoU[c], (double)pixels[c] / total)).ToArray();
        var result = new SegmentationResult(final.MeanIoU, final.PixelAccuracy, classes, data.Train.Count, data.Validation.Count, data.Train.Side,
                                            summary.TrainImagesPerSecond, data.Validation.Count / seconds, summary.Initialisation, summary.FrozenBackbone);
        RunJson.WriteAtomically(folder.Evaluation, result);
        string pictures = PicturesPath(folder);
        SegmentationPictures.Write(pictures, (DenseNetwork)network, data.Validation, data.ClassNames, normalization, device);
        var lines = new List<string>
        {
            Summary($"segmentation: mIoU {Percent(result.MeanIoU)}, pixel accuracy {Percent(result.PixelAccuracy)}", result.ValidationImages,
                    "validation", result.TrainImagesPerSecond, result.InferenceImagesPerSecond, pictures),
        };
        lines.AddRange(classes.Select(c => $"  {c.Name,-14} IoU {(c.IoU is double iou ? Percent(iou) : "n/a"),9}  ({Percent(c.PixelShare)} of pixels)"));
        lines.AddRange(classes.Where(c => c.PixelShare == 0).Select(c => $"note: class '{c.Name}' has no validation pixels; mIoU covers the classes present or predicted"));
        return lines;
    }

    public override void Dispose() => data.Dispose();
}
