using System.Text.Json.Serialization;
using Conic.Augmentation;
using Conic.Data;
using Conic.Configuration;
using Conic.Methods;
using Conic.Models;

namespace Conic.Training;

/// <summary>
/// Everything a pretraining run depends on; the one place for defaults. Saved as config.json in the run folder and
/// inside every checkpoint, so that <c>--resume</c> and <c>conic eval</c> rebuild the same run. Only the chosen
/// method's settings are held (<see cref="MethodSettings"/>); config.json writes them under the method's name.
/// </summary>
public sealed record PretrainOptions
{
    /// <summary>Dataset folder (see <see cref="Data.DatasetLoader"/>); null means Debian's Fashion-MNIST.</summary>
    public string? DataPath { get; init; }
    /// <summary>Side of the square images made from image folders; IDX files keep their own size.</summary>
    public int ImageSize { get; init; } = DatasetLoader.DefaultImageSize;
    /// <summary>The run folder (<c>--run</c>).</summary>
    public string RunDirectory { get; init; } = "runs/conic";
    /// <summary>The method's name (<c>--method</c>); change it with <see cref="WithMethod"/>, which also sets its settings.</summary>
    public string Method { get; init; } = ConicMethod.Definition.Name;
    /// <summary>The chosen method's settings; <c>with { Method = ... }</c> alone leaves them stale, so use <see cref="WithMethod"/>.</summary>
    [JsonIgnore]
    public MethodSettings MethodSettings { get; init; } = ConicMethod.Definition.Defaults;
    /// <summary>How many training images are instances (classes); 0 means all. They are a seeded random subset.</summary>
    public int Instances { get; init; }
    /// <summary>Instances per epoch, a window that slides over all instances once during the run; 0 = every instance every epoch.</summary>
    public int InstanceWindow { get; init; }
    /// <summary>
    /// The share of the training images held out as a validation split and evaluated on in place of the test split
    /// (0: none), so that recipes are chosen without looking at the test split.
    /// </summary>
    public double Validation { get; init; }
    /// <summary>Passes over the instances (not used with a time budget).</summary>
    public int Epochs { get; init; } = 150;
    /// <summary>Wall-clock minutes for the whole run, evaluation included; 0 = no budget (train <see cref="Epochs"/> epochs).</summary>
    public double TimeBudgetMinutes { get; init; }
    /// <summary>Images per step over all processes (two views each).</summary>
    public int BatchSize { get; init; } = 256;
    /// <summary>Learning rate for a batch of 256, scaled linearly with the batch size; null: the method's default.</summary>
    public double? LearningRate { get; init; }
    /// <summary>SGD momentum.</summary>
    public double Momentum { get; init; } = 0.9;
    /// <summary>Weight decay of the network; null: the method's default.</summary>
    public double? WeightDecay { get; init; }
    /// <summary>Epochs of linear warm-up before the cosine decay.</summary>
    public double WarmupEpochs { get; init; } = 5;
    /// <summary>Seed of initialisation, instance choice, order and augmentation.</summary>
    public int Seed { get; init; }
    /// <summary>cpu, cuda or cuda:N.</summary>
    public string Device { get; init; } = "cpu";
    /// <summary>CPU threads for libtorch; 0 means one per core.</summary>
    public int Threads { get; init; }
    /// <summary>
    /// In a data-parallel run, BatchNorm statistics over the global batch (all ranks) instead of each rank's share;
    /// with it, P ranks compute what one process does with the whole batch.
    /// </summary>
    public bool SyncBatchNorm { get; init; }
    /// <summary>Prepare the next batch's views on a worker thread while the current step computes (same views either way).</summary>
    public bool Prefetch { get; init; } = true;
    /// <summary>Threads that decode the images of image folders for a batch; 0 means one per core.</summary>
    public int Workers { get; init; }
    /// <summary>What an unreadable file in an image folder does: left out with a counted warning (listed in the run folder), or stops the run.</summary>
    public BadImagePolicy OnBadImage { get; init; } = BadImagePolicy.Skip;
    /// <summary>Online kNN monitor every this many epochs (and after the last); 0 = off. Reads the model only.</summary>
    public int MonitorEvery { get; init; } = 10;
    /// <summary>The backbone's shape.</summary>
    public BackboneOptions Backbone { get; init; } = new();
    /// <summary>A torchvision/timm ResNet state dict or safetensors file (full path) the backbone starts from; null: random (<see cref="Models.InitialWeights"/>).</summary>
    public string? InitPath { get; init; }
    /// <summary>How the two views are made.</summary>
    public AugmentationOptions Augmentation { get; init; } = new();
    /// <summary>SGD, SGD with LARS layer-wise trust ratios, or AdamW; null: the method's default (AdamW for ViTs and ConvNeXts).</summary>
    public OptimizerKind? Optimizer { get; init; }
    /// <summary>LARS trust coefficient η: a layer's rate is scaled by η·‖w‖ / (‖g‖ + wd·‖w‖).</summary>
    public double LarsEta { get; init; } = 0.02;
    /// <summary>Training precision of the backbone's convolutions (weights, gradients, optimiser and BatchNorm stay float32).</summary>
    public Precision Precision { get; init; } = Precision.Auto;
    /// <summary>CPU convolution kernels; Auto: oneDNN where the arithmetic check finds it right, else libtorch's own.</summary>
    public ConvolutionKernels Kernels { get; init; } = ConvolutionKernels.Auto;

    /// <summary>The definition of <see cref="Method"/>.</summary>
    [JsonIgnore]
    public MethodDefinition MethodDefinition => MethodRegistry.Get(Method);

    /// <summary>These options training <paramref name="method"/>, with its default settings unless it is the method already.</summary>
    public PretrainOptions WithMethod(string method)
    {
        var definition = MethodRegistry.Get(method);
        return definition.Name == Method && definition.Owns(MethodSettings) ? this : this with { Method = definition.Name, MethodSettings = definition.Defaults };
    }

    /// <summary>The chosen method's settings as their record type.</summary>
    public T SettingsOf<T>() where T : MethodSettings =>
        MethodSettings as T ?? throw new ConicException($"method '{Method}' has no {typeof(T).Name}");

    /// <summary>The learning rate for batch 256: the one given, or the default optimiser's (<see cref="DefaultTraining"/>).</summary>
    public double BaseLearningRate => LearningRate ?? DefaultTraining.LearningRate;

    /// <summary>The optimiser: the one given, or the method's (AdamW for ViTs and ConvNeXts).</summary>
    public OptimizerKind OptimizerOrDefault => Optimizer ?? (Backbone.IsResNet ? MethodDefinition.Training.Optimizer : OptimizerKind.AdamW);

    /// <summary>The weight decay: the one given, or the default optimiser's (<see cref="DefaultTraining"/>).</summary>
    public double WeightDecayOrDefault => WeightDecay ?? DefaultTraining.WeightDecay;

    /// <summary>Where a learning rate or weight decay not given comes from: AdamW's defaults when the run uses AdamW, the method's otherwise.</summary>
    TrainingDefaults DefaultTraining => OptimizerOrDefault == OptimizerKind.AdamW ? TrainingDefaults.AdamW : MethodDefinition.Training;

    /// <summary>These options with the method's defaults written in, as the trainer uses and records them.</summary>
    public PretrainOptions WithMethodDefaults() =>
        this with { LearningRate = BaseLearningRate, Optimizer = OptimizerOrDefault, WeightDecay = WeightDecayOrDefault };

    /// <summary>The learning rate training uses: <see cref="BaseLearningRate"/> scaled linearly by the batch size over 256.</summary>
    public double ScaledLearningRate => BaseLearningRate * BatchSize / 256.0;

    /// <summary>How long the run trains, as reports say it: "150 epochs" or "a 20-minute time budget".</summary>
    [JsonIgnore]
    public string LengthText => TimeBudgetMinutes > 0 ? $"a {SettingText.Duration(TimeBudgetMinutes)} time budget" : $"{Epochs} epochs";

    /// <summary>Throws a one-line <see cref="ConicException"/> for the first setting out of its range.</summary>
    public void Validate()
    {
        var definition = MethodDefinition;
        if (!definition.Owns(MethodSettings))
            throw new ConicException($"method '{Method}' was given the settings of another method ({MethodSettings.GetType().Name}); use WithMethod");
        foreach (var group in SettingGroups(definition)) group.Settings.ThrowIfInvalid(this);
    }

    /// <summary>
    /// Every pretraining setting, grouped as <c>--help</c> shows them; the method group holds only
    /// <paramref name="method"/>'s settings.
    /// </summary>
    public static IReadOnlyList<(string Title, Settings<PretrainOptions> Settings)> SettingGroups(MethodDefinition method) =>
        [.. GeneralSettingGroups, ($"method {method.Name}", MethodSettingsOf(method))];

    /// <summary>The settings every method shares, grouped.</summary>
    public static IReadOnlyList<(string Title, Settings<PretrainOptions> Settings)> GeneralSettingGroups =>
    [
        ("common", CommonSettings),
        ("data", DataSettings),
        ("backbone", BackboneOptions.Settings.Within<PretrainOptions>(o => o.Backbone, (o, b) => o with { Backbone = b })
            .Text(InitialWeights.Flag, "FILE", InitialWeights.FlagHelp, o => o.InitPath, (o, v) => o with { InitPath = Path.GetFullPath(v) }, unsetText: "random")),
        ("augmentation", AugmentationOptions.Settings.Within<PretrainOptions>(o => o.Augmentation, (o, a) => o with { Augmentation = a })),
    ];

    static Settings<PretrainOptions> MethodSettingsOf(MethodDefinition method) =>
        method.Settings.Within<PretrainOptions>(o => o.MethodSettings, (o, s) => o with { MethodSettings = s });

    /// <summary>Every method's settings, for parsers that must know all flags before the method is known.</summary>
    public static IEnumerable<(MethodDefinition Method, Setting<PretrainOptions> Setting)> AllMethodSettings() =>
        MethodRegistry.All.SelectMany(m => MethodSettingsOf(m).Select(s => (m, s)));

    static readonly Settings<PretrainOptions> CommonSettings = new Settings<PretrainOptions>()
        .Text(MethodFlag, "NAME", $"self-supervised method ({string.Join(", ", MethodRegistry.Names)}); --help with it lists its settings",
              o => o.Method, (o, v) => o.WithMethod(v), appliedFirst: true)
        .Text(RunFlag, "DIR", "run folder: config, checkpoint, metrics, TensorBoard events, eval and report", o => o.RunDirectory,
              (o, v) => o with { RunDirectory = v })
        .Integer("--epochs", "N", "passes over the instances (over the window, with --instance-window)", o => o.Epochs, (o, v) => o with { Epochs = v },
                 ValueRange.AtLeast(1))
        .Text("--time-budget", "TIME", "wall-clock budget of the whole run, evaluation included (e.g. 20m, 1h30m, 90s): the cosine learning rate is planned over the time and training stops on time; --epochs is then not used",
              o => o.TimeBudgetMinutes > 0 ? SettingText.Duration(o.TimeBudgetMinutes) : null, (o, v) => o with { TimeBudgetMinutes = SettingText.Minutes(v) },
              unsetText: "none")
        .Integer("--batch-size", "N", "images per step (two views each)", o => o.BatchSize, (o, v) => o with { BatchSize = v }, ValueRange.AtLeast(2))
        .OptionalNumber("--lr", "RATE", "learning rate for batch 256 (scaled linearly with the batch size); the method's default otherwise",
                        o => o.LearningRate, (o, v) => o with { LearningRate = v },
                        new(0, 100, MinOpen: true, Why: "SSL learning rates for batch 256 are 0.03 to 5"), o => o.BaseLearningRate)
        .Choice("--optimizer", "NAME", "sgd, lars (layer-wise trust ratios) or adamw (lr 5e-4, wd 0.05 unless given); the method's default otherwise, adamw for ViTs and ConvNeXts",
                o => o.OptimizerOrDefault, (o, v) => o with { Optimizer = v }, ("sgd", OptimizerKind.Sgd), ("lars", OptimizerKind.Lars), ("adamw", OptimizerKind.AdamW))
        .Number("--momentum", "M", "SGD momentum", o => o.Momentum, (o, v) => o with { Momentum = v }, ValueRange.Momentum)
        .OptionalNumber("--wd", "DECAY", "weight decay of the network; the method's default otherwise", o => o.WeightDecay, (o, v) => o with { WeightDecay = v },
                        ValueRange.NonNegative, o => o.WeightDecayOrDefault)
        .Number("--warmup-epochs", "N", "linear warm-up before the cosine decay", o => o.WarmupEpochs, (o, v) => o with { WarmupEpochs = v }, ValueRange.NonNegative)
        .Number("--lars-eta", "ETA", "LARS trust coefficient", o => o.LarsEta, (o, v) => o with { LarsEta = v }, ValueRange.Positive)
        .Integer("--seed", "N", "seed for initialisation, instance choice, order and augmentation", o => o.Seed, (o, v) => o with { Seed = v }, ValueRange.Any)
        .Text("--device", "DEV", "cpu, cuda or cuda:N (cuda needs the TorchSharp-cuda-linux package)", o => o.Device, (o, v) => o with { Device = v },
              o => o.Device is "cpu" or "cuda" || o.Device.StartsWith("cuda:", StringComparison.Ordinal) ? null : $"'{o.Device}' is not cpu, cuda or cuda:N")
        .Integer("--threads", "N", "CPU threads for libtorch; 0 = one per core", o => o.Threads, (o, v) => o with { Threads = v }, ValueRange.NonNegative)
        .Choice("--sync-bn", "on|off", "with --distributed: BatchNorm statistics over the global batch (all ranks), as one process with the whole batch computes them",
                o => o.SyncBatchNorm, (o, v) => o with { SyncBatchNorm = v }, ("on", true), ("off", false))
        .Choice("--prefetch", "on|off", "prepare the next batch's views on a worker thread while the current step computes", o => o.Prefetch,
                (o, v) => o with { Prefetch = v }, ("on", true), ("off", false))
        .Choice("--precision", "P", "backbone convolutions in training: auto (bf16 where the CPU has bfloat16 instructions and the start-up arithmetic check finds it right), fp32 or bf16; weights, gradients and evaluation stay fp32",
                o => o.Precision, (o, v) => o with { Precision = v }, ("auto", Precision.Auto), ("fp32", Precision.Float32), ("bf16", Precision.BFloat16))
        .Choice("--conv-kernels", "K", "CPU convolution kernels: auto (oneDNN where the start-up arithmetic check finds it right), onednn, or native (oneDNN off; slower)",
                o => o.Kernels, (o, v) => o with { Kernels = v }, ("auto", ConvolutionKernels.Auto), ("onednn", ConvolutionKernels.OneDnn), ("native", ConvolutionKernels.Native))
        .Integer("--monitor-every", "K", "online kNN on labelled train/test subsets every K epochs (0 = off)", o => o.MonitorEvery,
                 (o, v) => o with { MonitorEvery = v }, ValueRange.NonNegative);

    static readonly Settings<PretrainOptions> DataSettings = new Settings<PretrainOptions>()
        .Text("--data", "PATH", "folder of IDX files, of images (optionally one subfolder per class), or with train/ and test/ image folders",
              o => o.DataPath, (o, v) => o with { DataPath = v }, unsetText: DatasetLoader.DefaultFashionMnist)
        .Integer("--image-size", "PX", "side of the square images made from image folders (IDX files keep their size)", o => o.ImageSize,
                 (o, v) => o with { ImageSize = v }, ValueRange.AtLeast(8))
        .Integer("--instances", "N", "training images used as instances (a seeded random subset); 0 = all", o => o.Instances,
                 (o, v) => o with { Instances = v }, ValueRange.NonNegative)
        .Integer("--workers", "N", "threads that decode images of image folders for each batch; 0 = one per core", o => o.Workers,
                 (o, v) => o with { Workers = v }, ValueRange.NonNegative)
        .Choice("--on-bad-image", "WHAT", "an unreadable image file: skip (left out, counted, listed in bad-images.txt) or fail", o => o.OnBadImage,
                (o, v) => o with { OnBadImage = v }, ("skip", BadImagePolicy.Skip), ("fail", BadImagePolicy.Fail))
        .Number("--validation", "SHARE", "hold out this share of the training images (the same ones for every seed and method) and evaluate on them instead of the test split, to choose recipes without looking at it; 0 = evaluate on the test split",
                o => o.Validation, (o, v) => o with { Validation = v }, new ValueRange(0, 0.5, MaxOpen: true))
        .Integer("--instance-window", "N", "instances per epoch: a window that slides over all instances once during the run (over its epochs, or its --time-budget), so each is trained in a few consecutive epochs (PIC); 0 = all instances every epoch",
                 o => o.InstanceWindow, (o, v) => o with { InstanceWindow = v }, ValueRange.NonNegative);

    /// <summary>The run folder's flag, which every command that reads a run shares.</summary>
    public const string RunFlag = "--run";

    /// <summary>The flag that chooses the method; the method's own settings are shown and accepted after it.</summary>
    public const string MethodFlag = "--method";

    /// <summary>The training data these options name, read as they say (image size, bad files, decoding threads).</summary>
    public DatasetSplits LoadData(TextWriter? log = null)
    {
        var splits = DatasetLoader.Load(DataPath, ImageSize, log, OnBadImage, Workers);
        return Validation > 0 ? splits.HoldingOutValidation(Validation) : splits;
    }

    /// <summary>The setting behind <paramref name="flag"/>, for any method; null when there is none.</summary>
    public static Setting<PretrainOptions>? FindSetting(string flag, string method) =>
        SettingGroups(MethodRegistry.Get(method)).SelectMany(g => g.Settings).FirstOrDefault(s => s.Flag == flag);

    /// <summary>
    /// These options with <paramref name="flag"/> set from <paramref name="text"/>, as on the command line; an unknown
    /// flag, or one of another method, is a one-line error.
    /// </summary>
    public PretrainOptions Set(string flag, string text)
    {
        if (FindSetting(flag, Method) is { } setting) return setting.Apply(this, text);
        var owner = AllMethodSettings().FirstOrDefault(m => m.Setting.Flag == flag).Method;
        throw new ConicException(owner != null
            ? $"{flag}: a setting of method {owner.Name}, not of {Method} (give --method {owner.Name})"
            : $"{flag}: not a pretraining setting");
    }
}
