using Conic.Data;
using static TorchSharp.torch;
using static Conic.Runtime.KeptScalars;

namespace Conic.Evaluation;

/// <summary>
/// Per-pixel segmentation scores accumulated over a data set as a confusion matrix (rows: true class, columns:
/// predicted), as VOC and Cityscapes compute them: IoU of a class = TP / (TP + FP + FN) over all pixels of the set,
/// pixels marked <see cref="SegmentationDataset.IgnoreIndex"/> left out.
/// </summary>
public sealed class SegmentationMetrics(int classes)
{
    readonly long[] _confusion = new long[classes * classes];

    /// <summary>How many classes are counted.</summary>
    public int Classes { get; } = classes;

    /// <summary>Adds predicted and true class maps of the same shape (any integer type; true values ≥ Classes other than <see cref="SegmentationDataset.IgnoreIndex"/> are an error).</summary>
    public void Add(Tensor predicted, Tensor truth)
    {
        if (!predicted.shape.SequenceEqual(truth.shape))
            throw new ArgumentException($"prediction [{string.Join(", ", predicted.shape)}] and truth [{string.Join(", ", truth.shape)}] differ in shape");
        using var scope = NewDisposeScope();
        var t = truth.to(ScalarType.Int64).flatten();
        var p = predicted.to(ScalarType.Int64).flatten();
        var scored = t.ne(Kept(SegmentationDataset.IgnoreIndex));
        t = t.masked_select(scored);
        p = p.masked_select(scored);
        if (t.numel() == 0) return;
        if (t.max().item<long>() >= Classes || t.min().item<long>() < 0)
            throw new ArgumentException($"a true class index is outside 0..{Classes - 1}");
        var counts = t.mul(Kept(Classes)).add_(p, Kept(1)).bincount(null, Classes * Classes).data<long>().ToArray();
        for (int i = 0; i < _confusion.Length; i++) _confusion[i] += counts[i];
    }

    long Cell(int truth, int predicted) => _confusion[truth * Classes + predicted];

    /// <summary>Pixels of each true class (scored pixels only).</summary>
    public long[] TruePixels => Enumerable.Range(0, Classes).Select(c => Enumerable.Range(0, Classes).Sum(p => Cell(c, p))).ToArray();

    /// <summary>IoU of each class; NaN for a class neither present nor predicted (it has no IoU).</summary>
    public double[] ClassIoU => Enumerable.Range(0, Classes).Select(c =>
    {
        long truePositive = Cell(c, c);
        long union = Enumerable.Range(0, Classes).Sum(o => Cell(c, o) + Cell(o, c)) - truePositive;
        return union == 0 ? double.NaN : (double)truePositive / union;
    }).ToArray();

    /// <summary>Mean IoU over the classes that have one (present in the truth or predicted).</summary>
    public double MeanIoU
    {
        get
        {
            var defined = ClassIoU.Where(v => !double.IsNaN(v)).ToArray();
            return defined.Length == 0 ? double.NaN : defined.Average();
        }
    }

    /// <summary>Share of scored pixels whose class is right.</summary>
    public double PixelAccuracy
    {
        get
        {
            long total = _confusion.Sum();
            return total == 0 ? double.NaN : (double)Enumerable.Range(0, Classes).Sum(c => Cell(c, c)) / total;
        }
    }
}
