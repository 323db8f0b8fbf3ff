using Conic.Models;

namespace Conic.Transfer;

/// <summary>The labelled tasks <c>conic finetune</c> trains a backbone for.</summary>
public enum TransferTask { Segmentation, Detection, Classification }

/// <summary>
/// How <c>conic finetune</c> trains a pretrained backbone with a task head on labelled data. Stored as the fine-tune
/// run's config.json and in its checkpoint, so that a resumed run continues the same plan.
/// </summary>
public sealed record FinetuneOptions
{
    public TransferTask Task { get; init; } = TransferTask.Segmentation;
    /// <summary>The pretrained run whose backbone starts the network; null for random initialisation (the reference row).</summary>
    public string? InitRun { get; init; }
    /// <summary>The backbone when <see cref="InitRun"/> is null (input channels follow the data).</summary>
    public BackboneOptions Backbone { get; init; } = new();
    /// <summary>The labelled data; classification defaults to Fashion-MNIST (null).</summary>
    public string? DataPath { get; init; }
    /// <summary>Classification: the share of the training images whose labels are used (balanced over the classes, seeded).</summary>
    public double LabelFraction { get; init; } = 1;
    public int Epochs { get; init; } = 20;
    public int BatchSize { get; init; } = 32;
    /// <summary>SGD learning rate at <see cref="BatchSize"/> (not rescaled), cosine-decayed to 0 after a one-epoch warm-up.</summary>
    public double LearningRate { get; init; } = 0.05;
    public double Momentum { get; init; } = 0.9;
    public double WeightDecay { get; init; } = 1e-4;
    /// <summary>Train the head only, the backbone (BatchNorm statistics included) kept as pretrained.</summary>
    public bool FreezeBackbone { get; init; }
    /// <summary>Side images and masks are resized to; null keeps the images' own size (all square, one size).</summary>
    public int? ImageSize { get; init; }
    public int Seed { get; init; }
    /// <summary>The backbone's convolutions in training (auto: bfloat16 where the CPU has it and the arithmetic check finds it right); evaluation is float32.</summary>
    public Precision Precision { get; init; } = Precision.Auto;
    public string Device { get; init; } = "cpu";
    public int Threads { get; init; }

    /// <summary>The one-line problem with these options, or null.</summary>
    public string? Problem() =>
        Epochs < 1 ? "--epochs must be at least 1"
        : BatchSize < 2 ? "--batch-size must be at least 2 (BatchNorm needs two images)"
        : !(LearningRate > 0) ? "--lr must be positive"
        : Momentum is < 0 or >= 1 ? "--momentum must be in [0, 1)"
        : WeightDecay < 0 ? "--wd must not be negative"
        : ImageSize is < 8 ? "--image-size must be at least 8"
        : LabelFraction is <= 0 or > 1 ? "--label-fraction must be in (0, 1]"
        : LabelFraction != 1 && Task != TransferTask.Classification ? "--label-fraction is for --task classification"
        : DataPath == null && Task != TransferTask.Classification ? $"--data DIR is needed for {Task.ToString().ToLowerInvariant()}"
        : null;
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
    public static TaskNetwork CreateNetwork(this TransferTask task, ResNet backbone, int classes) => task switch
    {
        TransferTask.Segmentation => new DenseNetwork(backbone, classes, upsampleToInput: true),
        TransferTask.Detection => new DenseNetwork(backbone, classes + 4, upsampleToInput: false),
        _ => new ClassificationNetwork(backbone, classes),
    };
}
