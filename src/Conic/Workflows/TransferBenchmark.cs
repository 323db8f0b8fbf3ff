using System.Globalization;
using Conic.Data;
using Conic.Evaluation;
using Conic.Runtime;
using Conic.Training;
using Conic.Transfer;

namespace Conic.Workflows;

/// <summary>One row of a transfer table: a name and the pretrained run folder (null: random initialisation).</summary>
public sealed record TransferEntry(string Name, string? Run);

/// <summary>A row's scores: segmentation and detection after fine-tuning, and where the frozen encoder's activation falls.</summary>
public sealed record TransferRow(string Name, string? Run, SegmentationResult? Segmentation, DetectionResult? Detection,
                                 double? ActivationOnObjects, double? ObjectPixels);

/// <summary>
/// The paper's downstream test on one labelled scene set (<c>conic make-scenes</c>): every entry's backbone fine-tuned
/// for segmentation and for detection with the same options, and the share of its frozen activation on the objects.
/// Each fine-tune is a run folder under the output folder; a stopped benchmark continues where it stopped when rerun
/// (finished rows are read back, a killed fine-tune resumes). Writes transfer.md and transfer.csv.
/// </summary>
public static class TransferBenchmark
{
    public static IReadOnlyList<TransferRow> Run(IReadOnlyList<TransferEntry> entries, FinetuneOptions options, IReadOnlyList<TransferTask> tasks,
                                                 string output, TextWriter log)
    {
        Directory.CreateDirectory(output);
        var rows = new List<TransferRow>();
        foreach (var entry in entries)
        {
            SegmentationResult? segmentation = null;
            DetectionResult? detection = null;
            foreach (var task in tasks)
            {
                string folder = Path.Combine(output, $"{entry.Name}-{task.ToString().ToLowerInvariant()}");
                if (!File.Exists(new RunFolder(folder).Evaluation))
                {
                    log.WriteLine($"--- {entry.Name}: {task.ToString().ToLowerInvariant()} ---");
                    foreach (string line in Finetuner.Run(options with { InitRun = entry.Run, Task = task }, folder, resume: true, log)) log.WriteLine(line);
                }
                if (task == TransferTask.Segmentation) segmentation = RunJson.Read<SegmentationResult>(new RunFolder(folder).Evaluation);
                else detection = RunJson.Read<DetectionResult>(new RunFolder(folder).Evaluation);
            }
            var (onObjects, objectPixels) = entry.Run == null ? ((double?)null, (double?)null) : ActivationShare(entry.Run, options);
            rows.Add(new TransferRow(entry.Name, entry.Run, segmentation, detection, onObjects, objectPixels));
            Write(output, rows, options);
        }
        return rows;
    }

    static (double?, double?) ActivationShare(string run, FinetuneOptions options)
    {
        using var model = PretrainedModel.Load(run, options.Device, options.Threads);
        using var scenes = SegmentationDataset.Load(options.DataPath!, model.Backbone.Options.InputChannels, options.ImageSize);
        var (onObjects, objectPixels) = ActivationMaps.ObjectShare(model, scenes.Validation.Images, scenes.Validation.Masks);
        return (onObjects, objectPixels);
    }

    static void Write(string output, IReadOnlyList<TransferRow> rows, FinetuneOptions options)
    {
        static string Percent(double? v) => v is double x ? (100 * x).ToString("F2", CultureInfo.InvariantCulture) : "";
        var csv = new List<string> { "name,run,miou,pixel_accuracy,ap,ap50,ap75,activation_on_objects,object_pixels,segmentation_train_images_per_second,detection_train_images_per_second" };
        csv.AddRange(rows.Select(r => string.Join(",", r.Name, r.Run ?? "random", Percent(r.Segmentation?.MeanIoU), Percent(r.Segmentation?.PixelAccuracy),
            Percent(r.Detection?.AP), Percent(r.Detection?.AP50), Percent(r.Detection?.AP75), Percent(r.ActivationOnObjects), Percent(r.ObjectPixels),
            r.Segmentation?.TrainImagesPerSecond.ToString("F1", CultureInfo.InvariantCulture) ?? "", r.Detection?.TrainImagesPerSecond.ToString("F1", CultureInfo.InvariantCulture) ?? "")));
        AtomicFile.WriteText(Path.Combine(output, "transfer.csv"), string.Join("\n", csv) + "\n");

        var md = new List<string>
        {
            $"Fine-tuned end to end on {options.DataPath}: {options.Epochs} epochs, batch {options.BatchSize}, lr {options.LearningRate.ToString(CultureInfo.InvariantCulture)}, seed {options.Seed}" +
            (options.FreezeBackbone ? ", backbone frozen" : "") + ". Segmentation: mIoU and pixel accuracy on the validation scenes; detection: COCO box AP. " +
            "Activation on objects: share of the frozen encoder's activation (L2 norm of the last feature map) on object pixels.",
            "",
            "| backbone | mIoU | pixel acc. | AP | AP50 | AP75 | activation on objects (objects' pixel share) |",
            "|---|---|---|---|---|---|---|",
        };
        md.AddRange(rows.Select(r => $"| {r.Name} | {Percent(r.Segmentation?.MeanIoU)} | {Percent(r.Segmentation?.PixelAccuracy)} | {Percent(r.Detection?.AP)} | " +
                                     $"{Percent(r.Detection?.AP50)} | {Percent(r.Detection?.AP75)} | " +
                                     (r.ActivationOnObjects is null ? "" : $"{Percent(r.ActivationOnObjects)} ({Percent(r.ObjectPixels)})") + " |"));
        AtomicFile.WriteText(Path.Combine(output, "transfer.md"), string.Join("\n", md) + "\n");
    }
}
