using Conic.Data;
using Conic.Evaluation;
using Conic.Models;
using Conic.Runtime;
using Conic.Training;
using static TorchSharp.torch;
using static Conic.Runtime.KeptScalars;

namespace Conic.Transfer;

/// <summary>A fine-tuned detector's COCO box AP on the validation split.</summary>
public sealed record DetectionResult(double AP, double AP50, double AP75, IReadOnlyList<CategoryScore> Categories, int TrainImages,
                                     int ValidationImages, int Side, double TrainImagesPerSecond, double InferenceImagesPerSecond,
                                     string Initialisation, bool FrozenBackbone);

/// <summary>One category's AP (over IoU 0.50:0.95), null when the validation split has none of it.</summary>
public sealed record CategoryScore(int Id, string Name, double? AP, int Objects);

/// <summary>
/// Object detection with a CenterNet head (Zhou et al. 2019, "Objects as Points") on the FPN maps: per class a heat map
/// whose peaks are object centres, and at each centre the box's log width and height and the centre's sub-pixel
/// offset. Chosen because it is anchor-free and needs no non-maximum suppression (peaks are local maxima of a 3×3
/// window), so training, decoding and export stay a few tensor operations. Heat-map targets are TTFNet's elliptical
/// Gaussians (σ = 0.54 · side / 6), trained with CenterNet's penalty-reduced focal loss; sizes and offsets with L1 at
/// the centres.
/// </summary>
sealed class DetectionTask : FinetuneTask
{
    readonly DetectionDataset train, validation;
    readonly IReadOnlyList<CocoCategory> categories;

    DetectionTask(DetectionDataset train, DetectionDataset validation, IReadOnlyList<CocoCategory> categories)
    {
        this.train = train;
        this.validation = validation;
        this.categories = categories;
    }

    public static DetectionTask Load(string folder, int? channels, int? side)
    {
        var (train, validation, categories) = DetectionDataset.Load(folder, channels, side);
        return new DetectionTask(train, validation, categories);
    }

    public override string Name => "detection";
    public override IReadOnlyList<string> ClassNames => categories.Select(c => c.Name).ToArray();
    public override int TrainCount => train.Count;
    public override int Channels => (int)train.Images.shape[1];
    public override int Side => train.Side;
    public override InputNormalization Statistics() => Statistics(train.Images);
    int Classes => categories.Count;

    /// <summary>Detections kept per image, COCO's limit.</summary>
    const int MaxDetections = 100;
    /// <summary>TTFNet's α: the Gaussian's σ is α · side / 6.</summary>
    const float GaussianAlpha = 0.54f;

    public override TaskNetwork CreateNetwork(Backbone backbone)
    {
        var network = (DenseNetwork)TransferTask.Detection.CreateNetwork(backbone, Classes);
        // CenterNet's prior: every location starts as background with probability 0.9, so the focal loss starts small.
        using var noGrad = no_grad();
        network.OutputLayer.bias![TensorIndex.Slice(0, Classes)].fill_(Kept(-MathF.Log((1 - 0.1f) / 0.1f)));
        return network;
    }

    public override Tensor Loss(TaskNetwork network, int[] batch, bool[] flipped, InputNormalization normalization, Device device)
    {
        var images = normalization.FromPixels(Rows(train.Images, batch, flipped, device));
        var maps = network.call(images);
        var boxes = batch.Select((image, b) => flipped[b] ? train.Boxes[image].Select(box => box with { X = train.Side - box.X - box.Width }).ToArray() : train.Boxes[image]).ToArray();
        var (heat, size, offset, centres) = Targets(boxes, Classes, ((DenseNetwork)network).OutputStride, (int)maps.shape[2], device);
        var predictedHeat = maps[.., ..Classes].sigmoid().clamp(Kept(1e-4), Kept(1 - 1e-4));
        var positive = heat.eq(Kept(1));
        var predictedAbsent = predictedHeat.neg().add_(Kept(1), Kept(1));
        var focal = where(positive, predictedHeat.log().mul(predictedAbsent.pow(Kept(2))),
                          predictedAbsent.log().mul(predictedHeat.pow(Kept(2))).mul(heat.neg().add_(Kept(1), Kept(1)).pow(Kept(4))));
        var objects = positive.sum().clamp_min(Kept(1));
        var centreMask = centres.unsqueeze(1);
        var sizeLoss = (maps[.., Classes..(Classes + 2)] - size).abs().mul(centreMask).sum();
        var offsetLoss = (maps[.., (Classes + 2)..] - offset).abs().mul(centreMask).sum();
        return focal.sum().neg().add(sizeLoss, Kept(1)).add(offsetLoss, Kept(1)).div(objects);
    }

    /// <summary>
    /// Training targets of the boxes of B images: heat maps [B, K, O, O] (1 at each object's centre cell, the Gaussian around it, the maximum where objects
    /// overlap), log sizes and offsets [B, 2, O, O] at the centres, and the centre mask [B, O, O].
    /// </summary>
    internal static (Tensor Heat, Tensor Size, Tensor Offset, Tensor Centres) Targets(ObjectBox[][] images, int classes, int stride, int outputSide, Device device)
    {
        int o = outputSide, plane = o * o, count = images.Length;
        var heat = new float[count * classes * plane];
        var size = new float[count * 2 * plane];
        var offset = new float[count * 2 * plane];
        var centres = new float[count * plane];
        for (int b = 0; b < count; b++)
        foreach (var box in images[b])
        {
            float cx = (box.X + box.Width / 2) / stride, cy = (box.Y + box.Height / 2) / stride;
            int px = Math.Clamp((int)cx, 0, o - 1), py = Math.Clamp((int)cy, 0, o - 1);
            float sx = Math.Max(GaussianAlpha * box.Width / stride / 6, 0.3f), sy = Math.Max(GaussianAlpha * box.Height / stride / 6, 0.3f);
            int channel = (b * classes + box.Class) * plane;
            for (int y = 0; y < o; y++)
            for (int xx = 0; xx < o; xx++)
            {
                float value = MathF.Exp(-((xx - px) * (xx - px) / (2 * sx * sx) + (y - py) * (y - py) / (2 * sy * sy)));
                ref float cell = ref heat[channel + y * o + xx];
                cell = Math.Max(cell, value);
            }
            int at = py * o + px;
            centres[b * plane + at] = 1;
            size[(b * 2) * plane + at] = MathF.Log(box.Width / stride);
            size[(b * 2 + 1) * plane + at] = MathF.Log(box.Height / stride);
            offset[(b * 2) * plane + at] = cx - px;
            offset[(b * 2 + 1) * plane + at] = cy - py;
        }
        return (tensor(heat, [count, classes, o, o], device: device), tensor(size, [count, 2, o, o], device: device),
                tensor(offset, [count, 2, o, o], device: device), tensor(centres, [count, o, o], device: device));
    }

    /// <summary>The best <see cref="MaxDetections"/> boxes of each validation image, in its original pixels.</summary>
    List<Detection> Detect(TaskNetwork network, InputNormalization normalization, Device device, int batchSize)
    {
        network.eval();
        using var noGrad = no_grad();
        var found = new List<Detection>();
        for (int start = 0; start < validation.Count; start += batchSize)
        {
            using var scope = NewDisposeScope();
            var batch = Enumerable.Range(start, Math.Min(batchSize, validation.Count - start)).ToArray();
            var maps = network.call(normalization.FromPixels(Rows(validation.Images, batch, new bool[batch.Length], device)));
            var decoded = Decode(maps, Classes, ((DenseNetwork)network).OutputStride, MaxDetections);
            var boxes = decoded.Boxes.cpu().data<float>().ToArray();
            var scores = decoded.Scores.cpu().data<float>().ToArray();
            var classes = decoded.Classes.cpu().data<long>().ToArray();
            int kept = (int)decoded.Scores.shape[1];
            for (int b = 0; b < batch.Length; b++)
            {
                var image = validation.Annotations.Images[batch[b]];
                double sx = (double)image.Width / validation.Side, sy = (double)image.Height / validation.Side;
                for (int k = 0; k < kept; k++)
                {
                    int at = b * kept + k;
                    double[] box = [boxes[4 * at] * sx, boxes[4 * at + 1] * sy, boxes[4 * at + 2] * sx, boxes[4 * at + 3] * sy];
                    found.Add(new Detection(image.Id, categories[(int)classes[at]].Id, box, scores[at]));
                }
            }
        }
        return found;
    }

    /// <summary>
    /// The network's maps [B, K + 4, H, W] to the best <paramref name="keep"/> peaks per image: boxes [B, keep, 4]
    /// ([x, y, w, h] in input pixels), scores [B, keep] and class indices [B, keep].
    /// </summary>
    internal static (Tensor Boxes, Tensor Scores, Tensor Classes) Decode(Tensor maps, int classes, int stride, int keep)
    {
        using var scope = NewDisposeScope();
        long batch = maps.shape[0], rows = maps.shape[2], columns = maps.shape[3], cells = rows * columns;
        var heat = maps[.., ..classes].sigmoid();
        var peaks = heat.mul(nn.functional.max_pool2d(heat, 3, 1, 1).eq(heat));
        // reshape, not view: a backbone with permuted layouts (ConvNeXt) can hand the decoder channels-last maps.
        var (scores, index) = peaks.reshape(batch, -1).topk((int)Math.Min(keep, classes * cells));
        var cell = index.remainder(Kept(cells));
        var kind = index.div(Kept(cells), rounding_mode: RoundingMode.floor);
        var ys = cell.div(Kept(columns), rounding_mode: RoundingMode.floor).to_type(ScalarType.Float32);
        var xs = cell.remainder(Kept(columns)).to_type(ScalarType.Float32);
        Tensor At(int channel) => maps[.., channel].reshape(batch, -1).gather(1, cell);
        var width = At(classes).exp().mul(Kept(stride));
        var height = At(classes + 1).exp().mul(Kept(stride));
        var cx = xs.add(At(classes + 2), Kept(1)).mul(Kept(stride));
        var cy = ys.add(At(classes + 3), Kept(1)).mul(Kept(stride));
        var boxes = stack([cx - width / Kept(2), cy - height / Kept(2), width, height], 2);
        return (boxes.MoveToOuterDisposeScope(), scores.MoveToOuterDisposeScope(), kind.MoveToOuterDisposeScope());
    }

    public override IReadOnlyList<(string Name, double Value)> Validate(TaskNetwork network, InputNormalization normalization, Device device, int batchSize)
    {
        var scores = CocoEvaluation.Evaluate(validation.Annotations, Detect(network, normalization, device, batchSize));
        return [("ap", scores.AP), ("ap50", scores.AP50), ("ap75", scores.AP75)];
    }

    public override IReadOnlyList<string> Finish(TaskNetwork network, InputNormalization normalization, Device device, int batchSize,
                                                 RunFolder folder, FinetuneSummary summary)
    {
        List<Detection> found = null!;
        double seconds = Timed(() => found = Detect(network, normalization, device, batchSize));
        var scores = CocoEvaluation.Evaluate(validation.Annotations, found);
        var objects = validation.Annotations.Annotations.Where(a => a.Iscrowd == 0).GroupBy(a => a.CategoryId).ToDictionary(g => g.Key, g => g.Count());
        var perCategory = categories.Select(c => new CategoryScore(c.Id, c.Name, scores.CategoryAP.TryGetValue(c.Id, out double ap) ? ap : null,
                                                                   objects.GetValueOrDefault(c.Id))).ToArray();
        var result = new DetectionResult(scores.AP, scores.AP50, scores.AP75, perCategory, train.Count, validation.Count, validation.Side,
                                         summary.TrainImagesPerSecond, validation.Count / seconds, summary.Initialisation, summary.FrozenBackbone);
        RunJson.WriteAtomically(folder.Evaluation, result);
        string pictures = PicturesPath(folder);
        DetectionPictures.Write(pictures, validation, found, categories);
        var lines = new List<string>
        {
            Summary($"detection: AP {Percent(result.AP)}, AP50 {Percent(result.AP50)}, AP75 {Percent(result.AP75)} (COCO box AP)", result.ValidationImages,
                    "validation", result.TrainImagesPerSecond, result.InferenceImagesPerSecond, pictures),
        };
        lines.AddRange(perCategory.Select(c => $"  {c.Name,-14} AP {(c.AP is double v ? Percent(v) : "n/a"),9}  ({c.Objects} objects)"));
        lines.AddRange(perCategory.Where(c => c.Objects == 0).Select(c => $"note: category '{c.Name}' has no validation objects; AP covers the others"));
        return lines;
    }

    public override void Dispose()
    {
        train.Dispose();
        validation.Dispose();
    }
}
