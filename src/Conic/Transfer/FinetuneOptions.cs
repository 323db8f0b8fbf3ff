using System.Globalization;
using Conic.Configuration;
using Conic.Models;

namespace Conic.Transfer;

/// <summary>The labelled tasks <c>conic finetune</c> trains a backbone for.</summary>
public enum TransferTask
{
    /// <summary>A class per pixel (masks); scored by mIoU.</summary>
    Segmentation,
    /// <summary>Boxes of objects (COCO annotations); scored by box AP.</summary>
    Detection,
    /// <summary>A class per image; scored by top-1 accuracy.</summary>
    Classification,
}

/// <summary>
/// How <c>conic finetune</c> trains a pretrained backbone with a task head on labelled data. Stored as the fine-tune
/// run's config.json and in its checkpoint, so that a resumed run continues the same plan.
/// </summary>
public sealed record FinetuneOptions
{
    /// <summary>The labelled task (<c>--task</c>).</summary>
    public TransferTask Task { get; init; } = TransferTask.Segmentation;
    /// <summary>The pretrained run whose backbone starts the network; null for random initialisation (the reference row).</summary>
    public string? InitRun { get; init; }
    /// <summary>The backbone when <see cref="InitRun"/> is null (input channels follow the data).</summary>
    public BackboneOptions Backbone { get; init; } = new();
    /// <summary>With <see cref="InitRun"/> null: a torchvision/timm ResNet, ViT or ConvNeXt state dict or safetensors file (full path) the backbone starts from; null: random.</summary>
    public string? InitPath { get; init; }
    /// <summary>The labelled data; classification defaults to Fashion-MNIST (null).</summary>
    public string? DataPath { get; init; }
    /// <summary>Classification: the share of the training images whose labels are used (balanced over the classes, seeded).</summary>
    public double LabelFraction { get; init; } = 1;
    /// <summary>Passes over the training images (not used with a time budget).</summary>
    public int Epochs { get; init; } = 20;
    /// <summary>Minutes of training (validation and the final evaluation not counted), over which the cosine is planned; 0 trains <see cref="Epochs"/>.</summary>
    public double TimeBudgetMinutes { get; init; }
    /// <summary>Images per step.</summary>
    public int BatchSize { get; init; } = 32;
    /// <summary>SGD learning rate at <see cref="BatchSize"/> (not rescaled), cosine-decayed to 0 after a one-epoch warm-up.</summary>
    public double LearningRate { get; init; } = 0.05;
    /// <summary>SGD momentum.</summary>
    public double Momentum { get; init; } = 0.9;
    /// <summary>Weight decay.</summary>
    public double WeightDecay { get; init; } = 1e-4;
    /// <summary>Train the head only, the backbone (BatchNorm statistics included) kept as pretrained.</summary>
    public bool FreezeBackbone { get; init; }
    /// <summary>Side images and masks are resized to; null keeps the images' own size (all square, one size).</summary>
    public int? ImageSize { get; init; }
    /// <summary>Seed of the head, the order and the flips.</summary>
    public int Seed { get; init; }
    /// <summary>The backbone's convolutions in training (auto: bfloat16 where the CPU has it and the arithmetic check finds it right); evaluation is float32.</summary>
    public Precision Precision { get; init; } = Precision.Auto;
    /// <summary>cpu, cuda or cuda:N.</summary>
    public string Device { get; init; } = "cpu";
    /// <summary>CPU threads for libtorch; 0 = one per core.</summary>
    public int Threads { get; init; }

    /// <summary>Where the backbone starts: the pretrained run, the weights file, or "random".</summary>
    public string StartingPoint() => InitRun ?? InitPath ?? "random";

    /// <summary>The one-line problem with these options (naming its flag), or null.</summary>
    public string? Problem() => SettingGroups.SelectMany(g => g.Settings.Problems(this)).FirstOrDefault();

    /// <summary>Every fine-tuning setting, grouped as <c>conic finetune --help</c> shows them.</summary>
    public static IReadOnlyList<(string Title, Settings<FinetuneOptions> Settings)> SettingGroups =>
    [
        ("task", TaskSettings),
        ("training", TrainingSettings),
        ("backbone of --run none", BackboneOptions.Settings.Within<FinetuneOptions>(o => o.Backbone, (o, b) => o with { Backbone = b })
            .Text(InitialWeights.Flag, "FILE", InitialWeights.FlagHelp, o => o.InitPath, (o, v) => o with { InitPath = Path.GetFullPath(v) }, unsetText: "random")
            .Rule(o => o.InitPath != null && o.InitRun != null ? $"{InitialWeights.Flag} starts a backbone of its own: give --run none with it" : null)),
    ];

    static readonly Settings<FinetuneOptions> TaskSettings = new Settings<FinetuneOptions>()
        .Choice("--task", "NAME", "segmentation, detection or classification", o => o.Task, (o, v) => o with { Task = v },
                ("segmentation", TransferTask.Segmentation), ("detection", TransferTask.Detection), ("classification", TransferTask.Classification))
        .Text("--data", "DIR",
              "segmentation: train/images + train/masks and val/ (or test/) the same (masks: PNG class indices, 255 = ignore; classes.txt names the classes); " +
              "detection: train/annotations.json (COCO) with its images in train/images/ or beside it, and val/ the same; " +
              "classification: labelled IDX files or train/ and test/ folders of class subfolders",
              o => o.DataPath, (o, v) => o with { DataPath = v }, unsetText: "Fashion-MNIST, for classification")
        .Number("--label-fraction", "F", "classification: share of the training labels used, balanced over classes (e.g. 0.01, 0.1)", o => o.LabelFraction,
                (o, v) => o with { LabelFraction = v }, new ValueRange(0, 1, MinOpen: true))
        .Text("--image-size", "PX", "resize images and masks to this square side", o => o.ImageSize?.ToString(CultureInfo.InvariantCulture),
              (o, v) => o with { ImageSize = SettingText.Int("--image-size", v) }, o => o.ImageSize is < 8 ? "must be at least 8" : null,
              unsetText: "their own, when all are square and one size")
        .Switch("--freeze-backbone", "train the head only, the backbone (BatchNorm statistics included) kept as pretrained", o => o.FreezeBackbone,
                (o, v) => o with { FreezeBackbone = v })
        .Rule(o => o.LabelFraction != 1 && o.Task != TransferTask.Classification ? "--label-fraction is for --task classification" : null)
        .Rule(o => o.DataPath == null && o.Task != TransferTask.Classification ? $"--data DIR is needed for {o.Task.ToString().ToLowerInvariant()}" : null);

    static readonly Settings<FinetuneOptions> TrainingSettings = new Settings<FinetuneOptions>()
        .Integer("--epochs", "N", "passes over the training images", o => o.Epochs, (o, v) => o with { Epochs = v }, ValueRange.AtLeast(1))
        .Text("--time-budget", "TIME",
              "wall-clock training time (e.g. 10m, 1h30m): the cosine learning rate is planned over it and --epochs is not used; validation and the final evaluation come on top",
              o => o.TimeBudgetMinutes > 0 ? SettingText.Duration(o.TimeBudgetMinutes) : null, (o, v) => o with { TimeBudgetMinutes = SettingText.Minutes(v) },
              unsetText: "none")
        .Integer("--batch-size", "N", "images per step", o => o.BatchSize, (o, v) => o with { BatchSize = v }, new ValueRange(2, double.PositiveInfinity, Why: "BatchNorm needs two images"))
        .Number("--lr", "RATE", "peak SGD learning rate at this batch size (one-epoch warm-up, then cosine to zero)", o => o.LearningRate,
                (o, v) => o with { LearningRate = v }, ValueRange.Positive)
        .Number("--momentum", "M", "SGD momentum", o => o.Momentum, (o, v) => o with { Momentum = v }, ValueRange.Momentum)
        .Number("--wd", "DECAY", "weight decay", o => o.WeightDecay, (o, v) => o with { WeightDecay = v }, ValueRange.NonNegative)
        .Integer("--seed", "N", "seed for the head, order and flips", o => o.Seed, (o, v) => o with { Seed = v }, ValueRange.Any)
        .Choice("--precision", "P", "backbone convolutions in training: auto (bfloat16 where the CPU has it and the arithmetic check finds it right), fp32 or bf16",
                o => o.Precision, (o, v) => o with { Precision = v }, ("auto", Precision.Auto), ("fp32", Precision.Float32), ("bf16", Precision.BFloat16))
        .Text("--device", "DEV", "cpu, cuda or cuda:N", o => o.Device, (o, v) => o with { Device = v },
              o => o.Device is "cpu" or "cuda" || o.Device.StartsWith("cuda:", StringComparison.Ordinal) ? null : $"'{o.Device}' is not cpu, cuda or cuda:N")
        .Integer("--threads", "N", "CPU threads for libtorch; 0 = one per core", o => o.Threads, (o, v) => o with { Threads = v }, ValueRange.NonNegative)
        .Rule(o => o.TimeBudgetMinutes < 0 ? $"--time-budget: {SettingText.Format(o.TimeBudgetMinutes)} minutes must not be negative" : null);
}

static class TransferTasks
{
    /// <summary>The task's labelled data (see <see cref="Data.SegmentationDataset.Load"/>, <see cref="DetectionTask.Load"/> and <see cref="ClassificationTask.Load"/>).</summary>
    public static FinetuneTask Load(this TransferTask task, FinetuneOptions options, int? channels, int? side) => task switch
    {
        TransferTask.Segmentation => new SegmentationTask(Data.SegmentationDataset.Load(options.DataPath!, channels, side)),
        TransferTask.Detection => DetectionTask.Load(options.DataPath!, channels, side),
        _ => ClassificationTask.Load(options, side),
    };

    /// <summary>
    /// The task's network on <paramref name="backbone"/>: class maps at the input's size, CenterNet's maps (K heat maps,
    /// 2 sizes, 2 offsets), or a linear classifier on the pooled features.
    /// </summary>
    public static TaskNetwork CreateNetwork(this TransferTask task, Backbone backbone, int classes) => task switch
    {
        TransferTask.Segmentation => new DenseNetwork(backbone, classes, upsampleToInput: true),
        TransferTask.Detection => new DenseNetwork(backbone, classes + 4, upsampleToInput: false),
        _ => new ClassificationNetwork(backbone, classes),
    };
}
