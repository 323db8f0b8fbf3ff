using System.Globalization;
using Conic.Data;
using Conic.Evaluation;
using Conic.Runtime;
using Conic.Training;
using Conic.Transfer;

namespace Conic.Workflows;

/// <summary>
/// One row of a transfer table: a name and its pretrained run folders — several for pretraining seeds of one method,
/// none for random initialisation (the reference row).
/// </summary>
public sealed record TransferEntry(string Name, IReadOnlyList<string> Runs)
{
    /// <summary>Whether the row starts from random weights.</summary>
    public bool IsRandom => Runs.Count == 0;
}

/// <summary>One fine-tune of a row: the pretrained run it started from (null: random), its fine-tuning seed and its scores.</summary>
public sealed record TransferSample(string? Run, int Seed, SegmentationResult? Segmentation, DetectionResult? Detection);

/// <summary>Where a frozen encoder's activation falls on the validation scenes: its share on object pixels, and the objects' share of the pixels.</summary>
public sealed record ObjectShare(double OnObjects, double ObjectPixels);

/// <summary>A row's fine-tunes (pretraining runs × fine-tuning seeds) and where its frozen encoders' activation falls (mean over its runs; null for random).</summary>
public sealed record TransferRow(TransferEntry Entry, IReadOnlyList<TransferSample> Samples, ObjectShare? Share)
{
    /// <summary>The row's name.</summary>
    public string Name => Entry.Name;
    /// <summary>Segmentation mIoU over the row's fine-tunes, with its interval.</summary>
    public MeanInterval? MeanIoU { get; } = Over(Samples, s => s.Segmentation?.MeanIoU);
    /// <summary>Segmentation pixel accuracy over the row's fine-tunes.</summary>
    public MeanInterval? PixelAccuracy { get; } = Over(Samples, s => s.Segmentation?.PixelAccuracy);
    /// <summary>Detection box AP (IoU 0.50:0.95) over the row's fine-tunes.</summary>
    public MeanInterval? AP { get; } = Over(Samples, s => s.Detection?.AP);
    /// <summary>Detection AP50 over the row's fine-tunes.</summary>
    public MeanInterval? AP50 { get; } = Over(Samples, s => s.Detection?.AP50);
    /// <summary>Detection AP75 over the row's fine-tunes.</summary>
    public MeanInterval? AP75 { get; } = Over(Samples, s => s.Detection?.AP75);

    static MeanInterval? Over(IReadOnlyList<TransferSample> samples, Func<TransferSample, double?> score)
    {
        var values = samples.Select(score).OfType<double>().ToList();
        return values.Count == 0 ? null : MeanInterval.Of(values);
    }
}

/// <summary>
/// The paper's downstream test on one labelled scene set (<c>conic make-scenes</c>): every entry's backbones fine-tuned
/// for segmentation and for detection with the same options and several fine-tuning seeds, each row's mean with a 95 %
/// interval, whether it separates from a reference row, and the share of its frozen activation on the objects.
/// Each fine-tune is a run folder under the output folder; a stopped benchmark continues where it stopped when rerun
/// (finished fine-tunes are read back, a killed one resumes). Writes transfer.md, transfer.csv and transfer-samples.csv.
/// </summary>
public static class TransferBenchmark
{
    /// <param name="seeds">fine-tuning seeds per pretrained run: <c>options.Seed</c> and the next ones.</param>
    /// <param name="reference">the row every other is judged against; null: the first pretrained row.</param>
    public static IReadOnlyList<TransferRow> Run(IReadOnlyList<TransferEntry> entries, FinetuneOptions options, int seeds, IReadOnlyList<TransferTask> tasks,
                                                 string output, TextWriter log, string? reference = null)
    {
        if (seeds < 1) throw new ConicException("--seeds must be at least 1");
        reference ??= entries.FirstOrDefault(e => !e.IsRandom)?.Name;
        if (reference != null && entries.All(e => e.Name != reference)) throw new ConicException($"--reference: no row is named '{reference}'");
        Directory.CreateDirectory(output);
        var rows = new List<TransferRow>();
        foreach (var entry in entries)
        {
            var samples = new List<TransferSample>();
            IReadOnlyList<string?> runs = entry.IsRandom ? [null] : [.. entry.Runs];
            for (int r = 0; r < runs.Count; r++)
                for (int seed = options.Seed; seed < options.Seed + seeds; seed++)
                {
                    var seeded = options with { InitRun = runs[r], Seed = seed };
                    samples.Add(new TransferSample(runs[r], seed,
                        tasks.Contains(TransferTask.Segmentation) ? Finetune<SegmentationResult>(seeded, TransferTask.Segmentation, output, Prefix(entry, r), log) : null,
                        tasks.Contains(TransferTask.Detection) ? Finetune<DetectionResult>(seeded, TransferTask.Detection, output, Prefix(entry, r), log) : null));
                }
            var shares = entry.Runs.Select((run, r) => MeasuredShare(run, options, Path.Combine(output, $"{Prefix(entry, r)}-activation.json"))).ToList();
            rows.Add(new TransferRow(entry, samples, shares.Count == 0 ? null : new ObjectShare(shares.Average(s => s.OnObjects), shares[0].ObjectPixels)));
            Write(output, rows, options, seeds, reference);
        }
        return rows;
    }

    static T Finetune<T>(FinetuneOptions options, TransferTask task, string output, string prefix, TextWriter log)
    {
        string name = $"{prefix}-{task.ToString().ToLowerInvariant()}-seed{options.Seed}";
        var folder = new RunFolder(Path.Combine(output, name));
        if (!File.Exists(folder.Evaluation))
        {
            log.WriteLine($"--- {name} ---");
            foreach (string line in Finetuner.Run(options with { Task = task }, folder.Directory, resume: true, log)) log.WriteLine(line);
        }
        return RunJson.Read<T>(folder.Evaluation);
    }

    /// <summary>The fine-tune folders' name start: the row's name, and the run's index where a row pools several.</summary>
    static string Prefix(TransferEntry entry, int run) => entry.Runs.Count > 1 ? $"{entry.Name}-run{run}" : entry.Name;

    /// <summary>The run's share, measured once and kept in <paramref name="path"/>, so that a rerun (or the call assembling the lanes) reads it back.</summary>
    static ObjectShare MeasuredShare(string run, FinetuneOptions options, string path)
    {
        if (File.Exists(path)) return RunJson.Read<ObjectShare>(path);
        using var model = PretrainedModel.Load(run, options.Device, options.Threads);
        using var scenes = SegmentationDataset.Load(options.DataPath!, model.Backbone.Options.InputChannels, options.ImageSize);
        var (onObjects, objectPixels) = ActivationMaps.ObjectShare(model, scenes.Validation.Images, scenes.Validation.Masks);
        var share = new ObjectShare(onObjects, objectPixels);
        RunJson.WriteAtomically(path, share);
        return share;
    }

    static string Percent(double? v) => v is double x ? (100 * x).ToString("F2", CultureInfo.InvariantCulture) : "";
    static string Number(double v) => v.ToString("F1", CultureInfo.InvariantCulture);

    static void Write(string output, IReadOnlyList<TransferRow> rows, FinetuneOptions options, int seeds, string? reference)
    {
        WriteSamples(Path.Combine(output, "transfer-samples.csv"), rows);
        WriteSummary(Path.Combine(output, "transfer.csv"), rows);
        WriteTable(Path.Combine(output, "transfer.md"), rows, options, seeds, reference);
    }

    /// <summary>Every fine-tune, one line each: the spread behind a row's interval.</summary>
    static void WriteSamples(string path, IReadOnlyList<TransferRow> rows)
    {
        var lines = new List<string> { "name,run,seed,miou,pixel_accuracy,ap,ap50,ap75,segmentation_train_images_per_second,detection_train_images_per_second" };
        lines.AddRange(rows.SelectMany(r => r.Samples.Select(s => string.Join(",", r.Name, s.Run ?? "random", s.Seed,
            Percent(s.Segmentation?.MeanIoU), Percent(s.Segmentation?.PixelAccuracy), Percent(s.Detection?.AP), Percent(s.Detection?.AP50),
            Percent(s.Detection?.AP75), s.Segmentation is { } g ? Number(g.TrainImagesPerSecond) : "", s.Detection is { } d ? Number(d.TrainImagesPerSecond) : ""))));
        AtomicFile.WriteText(path, string.Join("\n", lines) + "\n");
    }

    static void WriteSummary(string path, IReadOnlyList<TransferRow> rows)
    {
        static string HalfWidth(MeanInterval? m) => m is { HasInterval: true } ? Percent(m.HalfWidth) : "";
        var lines = new List<string> { "name,runs,finetunes,miou,miou_half_width,pixel_accuracy,ap,ap_half_width,ap50,ap75,activation_on_objects,object_pixels" };
        lines.AddRange(rows.Select(r => string.Join(",", r.Name, r.Entry.IsRandom ? "random" : string.Join("+", r.Entry.Runs), r.Samples.Count,
            Percent(r.MeanIoU?.Mean), HalfWidth(r.MeanIoU), Percent(r.PixelAccuracy?.Mean), Percent(r.AP?.Mean), HalfWidth(r.AP),
            Percent(r.AP50?.Mean), Percent(r.AP75?.Mean), Percent(r.Share?.OnObjects), Percent(r.Share?.ObjectPixels))));
        AtomicFile.WriteText(path, string.Join("\n", lines) + "\n");
    }

    static void WriteTable(string path, IReadOnlyList<TransferRow> rows, FinetuneOptions options, int seeds, string? reference)
    {
        var against = rows.FirstOrDefault(r => r.Name == reference);
        var md = new List<string>
        {
            $"Fine-tuned end to end on {options.DataPath}: {options.Epochs} epochs, batch {options.BatchSize}, lr {options.LearningRate.ToString(CultureInfo.InvariantCulture)}" +
            (options.FreezeBackbone ? ", backbone frozen" : "") + $", fine-tuning seeds {options.Seed}–{options.Seed + seeds - 1} for each pretrained run. " +
            "Segmentation: mIoU and pixel accuracy on the validation scenes; detection: COCO box AP. Scores are means over the row's fine-tunes " +
            "± the half-width of their 95 % Student-t interval (fine-tuning seeds and pretraining runs counted as equal draws; every fine-tune is in transfer-samples.csv). " +
            $"Against {reference ?? "the reference"}: above or below only where the two 95 % intervals do not overlap. " +
            "Activation on objects: share of the frozen encoder's activation (L2 norm of the last feature map) on object pixels.",
            "",
            $"| backbone | fine-tunes | mIoU | pixel acc. | AP | AP50 | AP75 | against {reference ?? "—"} (mIoU; AP) | activation on objects (objects' pixel share) |",
            "|---|---|---|---|---|---|---|---|---|",
        };
        md.AddRange(rows.Select(r => $"| {r.Name} | {r.Samples.Count} | {r.MeanIoU?.ToPercent()} | {r.PixelAccuracy?.ToPercent()} | {r.AP?.ToPercent()} | " +
                                     $"{r.AP50?.ToPercent()} | {r.AP75?.ToPercent()} | {Verdict(r, against)} | " +
                                     (r.Share is { } share ? $"{Percent(share.OnObjects)} ({Percent(share.ObjectPixels)})" : "") + " |"));
        AtomicFile.WriteText(path, string.Join("\n", md) + "\n");
    }

    /// <summary>"above; not separable" — the row against the reference on mIoU and AP, judged by their intervals.</summary>
    static string Verdict(TransferRow row, TransferRow? reference)
    {
        if (reference == null) return "";
        if (ReferenceEquals(row, reference)) return "reference";
        static string One(MeanInterval? mine, MeanInterval? theirs) =>
            mine is null || theirs is null ? "—"
            : !mine.HasInterval || !theirs.HasInterval ? "one fine-tune: no interval"
            : mine.Separation(theirs) switch { 1 => "above", -1 => "below", _ => "not separable" };
        return $"{One(row.MeanIoU, reference.MeanIoU)}; {One(row.AP, reference.AP)}";
    }
}
