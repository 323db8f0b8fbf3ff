using Conic.Augmentation;
using Conic.Data;
using Conic.Evaluation;
using Conic.Methods;
using Conic.Models;
using Conic.Reporting;
using Conic.Training;

namespace Conic.Cli.Commands;

/// <summary><c>conic pretrain</c>: options to <see cref="PretrainOptions"/>, then train, evaluate and report.</summary>
static class PretrainCommand
{
    public static int Run(string[] args)
    {
        var options = BaseOptions(args);
        bool resume = false, evaluate = true;
        var table = new OptionTable("pretrain",
            "Pretrains an encoder with a self-supervised method, checkpointing every epoch, then evaluates it on the\n" +
            "test split (weighted kNN, linear probe) and writes eval.json and report.md into the run folder.");
        AddOptions(table, () => options, o => options = o);
        table.Value("--config", "FILE", "options from a YAML or JSON file (any run's config.json is one); the flags given refine it", () => "none", _ => { });
        table.Flag("--resume", "continue the run folder's last checkpoint with its config.json (flags may change where it runs, or add epochs)", () => resume = true);
        table.Flag("--no-eval", "skip the evaluation after pretraining", () => evaluate = false);
        if (!table.Parse(args)) return 0;
        options.Validate();  // before the data loads, so that a bad option fails at once
        using var runLock = Runtime.RunLock.Acquire(options.RunDirectory);

        var data = DatasetLoader.Load(options.DataPath, options.ImageSize, Console.Error);
        Console.Error.WriteLine($"data: {data.Train.Count} training images {data.Train.Channels}x{data.Train.Height}x{data.Train.Width} from {data.Train.Source}" +
                                (data.Test != null ? $", {data.Test.Count} test images" : ""));
        foreach (string note in data.Notes) Console.Error.WriteLine($"note: {note}");
        using var model = Trainer.Pretrain(options, data.Train, Console.Error, resume, KnnMonitor.Create(data, options.Seed));

        EvaluationResult? result = null;
        if (evaluate && data.Test?.Labels != null && data.Train.Labels != null)
            result = Evaluator.EvaluateRun(model, options.RunDirectory, data, Console.Error);
        else if (evaluate)
            Console.Error.WriteLine("no labelled test split: skipping evaluation");
        Console.Error.WriteLine($"report: {MarkdownReport.Write(options.RunDirectory, model.Options, result)}");
        Console.Error.WriteLine($"report: {HtmlReport.Write(options.RunDirectory, model, data, log: Console.Error)}");
        foreach (string warning in RunDiagnosis.Warnings(options.RunDirectory, result)) Console.Error.WriteLine($"warning: {warning}");
        return 0;
    }

    /// <summary>What the flags refine: the <c>--config</c> file, or with <c>--resume</c> the run's own config.json, else the defaults.</summary>
    static PretrainOptions BaseOptions(string[] args)
    {
        string? Value(string name)
        {
            int at = Array.IndexOf(args, name);
            return at >= 0 && at + 1 < args.Length ? args[at + 1] : args.FirstOrDefault(a => a.StartsWith(name + "=", StringComparison.Ordinal))?[(name.Length + 1)..];
        }
        if (Value("--config") is string config) return ConfigFile.Read(config);
        string saved = Path.Combine(Value("--run") ?? new PretrainOptions().RunDirectory, Trainer.ConfigFile);
        return args.Contains("--resume") && File.Exists(saved) ? RunJson.Read<PretrainOptions>(saved) : new PretrainOptions();
    }

    /// <summary>Every pretraining option; shared with other commands that train (one table, one set of names).</summary>
    public static void AddOptions(OptionTable t, Func<PretrainOptions> get, Action<PretrainOptions> set)
    {
        void Update(Func<PretrainOptions, PretrainOptions> change) => set(change(get()));
        void Backbone(Func<BackboneOptions, BackboneOptions> change) => Update(o => o with { Backbone = change(o.Backbone) });
        void Augment(Func<AugmentationOptions, AugmentationOptions> change) => Update(o => o with { Augmentation = change(o.Augmentation) });
        void Conic(Func<ConicOptions, ConicOptions> change) => Update(o => o with { Conic = change(o.Conic) });

        t.Value("--data", "PATH", "folder of IDX files, of images (optionally one subfolder per class), or with train/ and test/ image folders",
                () => get().DataPath ?? DatasetLoader.DefaultFashionMnist, v => Update(o => o with { DataPath = v }));
        t.Value("--image-size", "PX", "side of the square images made from image folders", () => get().ImageSize,
                v => Update(o => o with { ImageSize = OptionTable.Int("--image-size", v, 8) }));
        t.Value("--run", "DIR", "run folder: config, checkpoint, metrics, TensorBoard events, eval and report", () => get().RunDirectory,
                v => Update(o => o with { RunDirectory = v }));
        t.Value("--method", "NAME", $"self-supervised method ({string.Join(", ", MethodRegistry.Names)})", () => get().Method,
                v => Update(o => o with { Method = v }));
        t.Value("--instances", "N", "training images used as instances (a seeded random subset); 0 = all", () => get().Instances,
                v => Update(o => o with { Instances = OptionTable.Int("--instances", v, 0) }));
        t.Value("--instance-window", "N", "instances per epoch: a window that slides over all instances once during the run, so each is trained in a few consecutive epochs (PIC); 0 = all instances every epoch",
                () => get().InstanceWindow, v => Update(o => o with { InstanceWindow = OptionTable.Int("--instance-window", v, 0) }));
        t.Value("--epochs", "N", "passes over the instances (over the window, with --instance-window)", () => get().Epochs, v => Update(o => o with { Epochs = OptionTable.Int("--epochs", v, 1) }));
        t.Value("--batch-size", "N", "images per step (two views each)", () => get().BatchSize,
                v => Update(o => o with { BatchSize = OptionTable.Int("--batch-size", v, 2) }));
        t.Value("--lr", "RATE", "learning rate for batch 256 (scaled linearly with the batch size); default per method: 0.12, swav 0.5, byol 1.0", () => get().BaseLearningRate,
                v => Update(o => o with { LearningRate = OptionTable.Double("--lr", v) }));
        t.Value("--momentum", "M", "SGD momentum", () => get().Momentum, v => Update(o => o with { Momentum = OptionTable.Double("--momentum", v) }));
        t.Value("--wd", "DECAY", "weight decay of the network; default per method: 5e-4, byol 1e-5", () => get().WeightDecayOrDefault, v => Update(o => o with { WeightDecay = OptionTable.Double("--wd", v) }));
        t.Value("--warmup-epochs", "N", "linear warm-up before the cosine decay", () => get().WarmupEpochs,
                v => Update(o => o with { WarmupEpochs = OptionTable.Double("--warmup-epochs", v) }));
        t.Value("--seed", "N", "seed for initialisation, instance choice, order and augmentation", () => get().Seed,
                v => Update(o => o with { Seed = OptionTable.Int("--seed", v) }));
        t.Value("--device", "DEV", "cpu, cuda or cuda:N (cuda needs the TorchSharp-cuda-linux package)", () => get().Device,
                v => Update(o => o with { Device = v }));
        t.Value("--threads", "N", "CPU threads for libtorch; 0 = one per core", () => get().Threads,
                v => Update(o => o with { Threads = OptionTable.Int("--threads", v, 0) }));
        t.Value("--prefetch", "on|off", "prepare the next batch's views on a worker thread while the current step computes", () => get().Prefetch ? "on" : "off",
                v => Update(o => o with { Prefetch = OptionTable.Choice("--prefetch", v, ("on", true), ("off", false)) }));
        t.Value("--monitor-every", "K", "online kNN on labelled train/test subsets every K epochs (0 = off)", () => get().MonitorEvery,
                v => Update(o => o with { MonitorEvery = OptionTable.Int("--monitor-every", v, 0) }));

        t.Value("--arch", "NAME", "backbone: resnet18 or resnet50", () => get().Backbone.Depth == ResNetDepth.ResNet50 ? "resnet50" : "resnet18",
                v => Backbone(b => b with { Depth = OptionTable.Choice("--arch", v, ("resnet18", ResNetDepth.ResNet18), ("resnet50", ResNetDepth.ResNet50)) }));
        t.Value("--width", "C", "channels of the first stage (torchvision: 64)", () => get().Backbone.Width,
                v => Backbone(b => b with { Width = OptionTable.Int("--width", v, 1) }));
        t.Value("--stem", "KIND", "small (3x3 conv, no max-pool; for ~32 px images) or imagenet (7x7/2 conv + max-pool)",
                () => get().Backbone.SmallImageStem ? "small" : "imagenet",
                v => Backbone(b => b with { SmallImageStem = OptionTable.Choice("--stem", v, ("small", true), ("imagenet", false)) }));

        t.Value("--temperature", "T", "ConIC: temperature of the instance classifier", () => get().Conic.Temperature,
                v => Conic(c => c with { Temperature = OptionTable.Double("--temperature", v) }));
        t.Value("--lambda", "W", "ConIC: weight of the consistency loss (0 = classification only)", () => get().Conic.ConsistencyWeight,
                v => Conic(c => c with { ConsistencyWeight = OptionTable.Double("--lambda", v) }));
        t.Value("--lambda-ramp", "F", "ConIC: fraction of training over which lambda rises linearly from 0 (0 = constant)", () => get().Conic.ConsistencyRamp,
                v => Conic(c => c with { ConsistencyRamp = OptionTable.Double("--lambda-ramp", v) }));
        t.Value("--consistency-on", "WHAT", "ConIC: what the consistency loss pulls together: embedding (projection output) or features (backbone output)",
                () => get().Conic.ConsistencyOn,
                v => Conic(c => c with { ConsistencyOn = OptionTable.Choice("--consistency-on", v, ("embedding", ConsistencyTarget.Embedding), ("features", ConsistencyTarget.Features)) }));
        t.Value("--embedding-dim", "D", "ConIC: embedding size (classifier rows)", () => get().Conic.EmbeddingDim,
                v => Conic(c => c with { EmbeddingDim = OptionTable.Int("--embedding-dim", v, 1) }));
        t.Value("--projection-hidden", "H", "ConIC: hidden width of the projection MLP; 0 = 4 x feature width", () => get().Conic.ProjectionHidden,
                v => Conic(c => c with { ProjectionHidden = OptionTable.Int("--projection-hidden", v, 0) }));
        t.Value("--classifier-lr-scale", "X", "ConIC: classifier learning rate as a multiple of --lr", () => get().Conic.ClassifierLearningRateScale,
                v => Conic(c => c with { ClassifierLearningRateScale = OptionTable.Double("--classifier-lr-scale", v) }));
        t.Value("--classifier-wd", "DECAY", "ConIC: weight decay of the classifier", () => get().Conic.ClassifierWeightDecay,
                v => Conic(c => c with { ClassifierWeightDecay = OptionTable.Double("--classifier-wd", v) }));
        t.Value("--classifier-head", "KIND", "ConIC: auto (materialized while the logits are under 32 MB, else chunked), chunked (memory O(batch x chunk)) or materialized (full logits matrix); all exact",
                () => get().Conic.ClassifierHead.ToString().ToLowerInvariant(),
                v => Conic(c => c with { ClassifierHead = OptionTable.Choice("--classifier-head", v, ("auto", ClassifierHead.Auto), ("chunked", ClassifierHead.Chunked), ("materialized", ClassifierHead.Materialized)) }));
        t.Value("--classifier-chunk", "N", "ConIC: classes per chunk of the chunked head; 0 = automatic", () => get().Conic.ClassifierChunk,
                v => Conic(c => c with { ClassifierChunk = OptionTable.Int("--classifier-chunk", v, 0) }));

        t.Value("--instdisc-negatives", "K", "InstDisc: memory-bank negatives per step (exact softmax when the bank is smaller)", () => get().InstDisc.Negatives,
                v => Update(o => o with { InstDisc = o.InstDisc with { Negatives = OptionTable.Int("--instdisc-negatives", v, 1) } }));
        t.Value("--instdisc-bank-momentum", "M", "InstDisc: memory-bank momentum (0 = replace entries with the newest features)", () => get().InstDisc.BankMomentum,
                v => Update(o => o with { InstDisc = o.InstDisc with { BankMomentum = OptionTable.Double("--instdisc-bank-momentum", v) } }));
        t.Value("--instdisc-temperature", "T", "InstDisc: temperature", () => get().InstDisc.Temperature,
                v => Update(o => o with { InstDisc = o.InstDisc with { Temperature = OptionTable.Double("--instdisc-temperature", v) } }));
        t.Value("--moco-queue", "K", "MoCo: queue length (capped at half the instance count)", () => get().Moco.QueueSize,
                v => Update(o => o with { Moco = o.Moco with { QueueSize = OptionTable.Int("--moco-queue", v, 1) } }));
        t.Value("--moco-momentum", "M", "MoCo: key-encoder momentum", () => get().Moco.EncoderMomentum,
                v => Update(o => o with { Moco = o.Moco with { EncoderMomentum = OptionTable.Double("--moco-momentum", v) } }));
        t.Value("--moco-temperature", "T", "MoCo: temperature (default 0.07 for v1, 0.2 for v2)", () => get().Moco.Temperature,
                v => Update(o => o with { Moco = o.Moco with { Temperature = OptionTable.Double("--moco-temperature", v) } }));
        t.Value("--moco-shuffle-groups", "G", "MoCo: BatchNorm groups that stand in for shuffling BN across GPUs", () => get().Moco.ShuffleGroups,
                v => Update(o => o with { Moco = o.Moco with { ShuffleGroups = OptionTable.Int("--moco-shuffle-groups", v, 1) } }));
        t.Value("--simclr-temperature", "T", "SimCLR: NT-Xent temperature", () => get().Simclr.Temperature,
                v => Update(o => o with { Simclr = o.Simclr with { Temperature = OptionTable.Double("--simclr-temperature", v) } }));
        t.Value("--byol-momentum", "M", "BYOL: target momentum at the start (rises to 1)", () => get().Byol.BaseMomentum,
                v => Update(o => o with { Byol = o.Byol with { BaseMomentum = OptionTable.Double("--byol-momentum", v) } }));
        t.Value("--swav-prototypes", "K", "SwAV: number of prototypes", () => get().Swav.Prototypes,
                v => Update(o => o with { Swav = o.Swav with { Prototypes = OptionTable.Int("--swav-prototypes", v, 2) } }));
        t.Value("--swav-temperature", "T", "SwAV: temperature of the swapped prediction", () => get().Swav.Temperature,
                v => Update(o => o with { Swav = o.Swav with { Temperature = OptionTable.Double("--swav-temperature", v) } }));
        t.Value("--swav-epsilon", "E", "SwAV: Sinkhorn-Knopp regularisation", () => get().Swav.Epsilon,
                v => Update(o => o with { Swav = o.Swav with { Epsilon = OptionTable.Double("--swav-epsilon", v) } }));
        t.Value("--optimizer", "NAME", "sgd, or lars (layer-wise trust ratios); default per method: sgd, byol lars", () => get().OptimizerOrDefault,
                v => Update(o => o with { Optimizer = OptionTable.Choice("--optimizer", v, ("sgd", OptimizerKind.Sgd), ("lars", OptimizerKind.Lars)) }));
        t.Value("--precision", "P", "backbone convolutions in training: auto (bf16 where the CPU has bfloat16 instructions and the start-up arithmetic check finds it right), fp32 or bf16; weights, gradients and evaluation stay fp32",
                () => get().Precision switch { Precision.Float32 => "fp32", Precision.BFloat16 => "bf16", _ => "auto" },
                v => Update(o => o with { Precision = OptionTable.Choice("--precision", v, ("auto", Precision.Auto), ("fp32", Precision.Float32), ("bf16", Precision.BFloat16)) }));
        t.Value("--conv-kernels", "K", "CPU convolution kernels: auto (oneDNN where the start-up arithmetic check finds it right), onednn, or native (oneDNN off; slower)",
                () => get().Kernels.ToString().ToLowerInvariant(),
                v => Update(o => o with { Kernels = OptionTable.Choice("--conv-kernels", v, ("auto", ConvolutionKernels.Auto), ("onednn", ConvolutionKernels.OneDnn), ("native", ConvolutionKernels.Native)) }));
        t.Value("--lars-eta", "ETA", "LARS trust coefficient", () => get().LarsEta, v => Update(o => o with { LarsEta = OptionTable.Double("--lars-eta", v) }));

        t.Value("--augmentation", "PRESET", $"augmentation preset ({string.Join(", ", AugmentationPresets.All.Keys)}); the options below refine it",
                () => "default", v => Update(o => o with { Augmentation = AugmentationPresets.Named(v) }), first: true);
        t.Value("--crop-area-min", "F", "random resized crop: smallest area fraction", () => get().Augmentation.CropAreaMin,
                v => Augment(a => a with { CropAreaMin = OptionTable.Double("--crop-area-min", v) }));
        t.Value("--crop-area-max", "F", "random resized crop: largest area fraction", () => get().Augmentation.CropAreaMax,
                v => Augment(a => a with { CropAreaMax = OptionTable.Double("--crop-area-max", v) }));
        t.Value("--flip-p", "P", "horizontal flip probability", () => get().Augmentation.FlipProbability,
                v => Augment(a => a with { FlipProbability = OptionTable.Double("--flip-p", v) }));
        t.Value("--jitter-p", "P", "colour jitter probability", () => get().Augmentation.JitterProbability,
                v => Augment(a => a with { JitterProbability = OptionTable.Double("--jitter-p", v) }));
        t.Value("--brightness", "S", "colour jitter: brightness strength", () => get().Augmentation.Brightness,
                v => Augment(a => a with { Brightness = OptionTable.Double("--brightness", v) }));
        t.Value("--contrast", "S", "colour jitter: contrast strength", () => get().Augmentation.Contrast,
                v => Augment(a => a with { Contrast = OptionTable.Double("--contrast", v) }));
        t.Value("--saturation", "S", "colour jitter: saturation strength (colour images)", () => get().Augmentation.Saturation,
                v => Augment(a => a with { Saturation = OptionTable.Double("--saturation", v) }));
        t.Value("--hue", "S", "colour jitter: hue strength, at most 0.5 (colour images)", () => get().Augmentation.Hue,
                v => Augment(a => a with { Hue = OptionTable.Double("--hue", v) }));
        t.Value("--grayscale-p", "P", "random grayscale probability (colour images)", () => get().Augmentation.GrayscaleProbability,
                v => Augment(a => a with { GrayscaleProbability = OptionTable.Double("--grayscale-p", v) }));
        t.Value("--blur-p", "P", "Gaussian blur probability (sigma 0.1-2 px)", () => get().Augmentation.BlurProbability,
                v => Augment(a => a with { BlurProbability = OptionTable.Double("--blur-p", v) }));
        t.Value("--randaugment-ops", "N", "RandAugment-style operations per image (0 = off; infomin uses 2)", () => get().Augmentation.RandAugmentOps,
                v => Augment(a => a with { RandAugmentOps = OptionTable.Int("--randaugment-ops", v, 0) }));
        t.Value("--randaugment-magnitude", "M", "their strength, 0-10", () => get().Augmentation.RandAugmentMagnitude,
                v => Augment(a => a with { RandAugmentMagnitude = OptionTable.Double("--randaugment-magnitude", v) }));
        t.Value("--small-crops", "N", "multi-crop: small extra views per image (swav)", () => get().Augmentation.SmallCrops,
                v => Augment(a => a with { SmallCrops = OptionTable.Int("--small-crops", v, 0) }));
        t.Value("--small-crop-size", "PX", "side of the small crops; 0 = half the image side", () => get().Augmentation.SmallCropSize,
                v => Augment(a => a with { SmallCropSize = OptionTable.Int("--small-crop-size", v, 0) }));
    }
}
