using Conic.Augmentation;
using Conic.Data;
using Conic.Distributed;
using Conic.Methods;
using Conic.Models;
using Conic.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Conic.Training;

/// <summary>A method with its backbone, and the input normalisation it was trained with; built fresh or from a run folder.</summary>
public sealed class PretrainedModel : IDisposable
{
    PretrainedModel(PretrainOptions options, SslMethod method, InputNormalization normalization, int instanceCount,
                    (int Height, int Width) imageSize, Device device)
    {
        ImageSize = imageSize;
        Options = options;
        Method = method;
        Normalization = normalization;
        Augmenter = new BatchAugmenter(options.Augmentation, normalization);
        InstanceCount = instanceCount;
        Device = device;
    }

    /// <summary>The options the model was built with (resolved from the data).</summary>
    public PretrainOptions Options { get; }
    /// <summary>The method: its backbone, heads and training state.</summary>
    public SslMethod Method { get; }
    /// <summary>The backbone, whose features are evaluated and exported.</summary>
    public Backbone Backbone => Method.Backbone;
    /// <summary>How images are prepared for the backbone (training statistics); evaluation and exports use it too.</summary>
    public InputNormalization Normalization { get; }
    /// <summary>The training views, normalised as <see cref="Normalization"/> says.</summary>
    public BatchAugmenter Augmenter { get; }
    /// <summary>How many instances the method was built for.</summary>
    public int InstanceCount { get; }
    /// <summary>Height and width of the training images; (0, 0) for runs from before it was recorded.</summary>
    public (int Height, int Width) ImageSize { get; }
    /// <summary>Where the model's tensors are.</summary>
    public Device Device { get; }
    /// <summary>The convolution arithmetic checked on this machine; the float32 fallback until <see cref="CheckArithmetic"/> runs.</summary>
    public ArithmeticChoice Arithmetic { get; private set; } = ArithmeticChoice.Unchecked(Precision.Float32);

    /// <summary>Every backbone of the method, momentum copies included.</summary>
    public IEnumerable<Backbone> Backbones => Method.modules().OfType<Backbone>();

    /// <summary>
    /// Checks this CPU's convolution arithmetic on this network and input size (<see cref="ArithmeticCheck"/>) and
    /// makes the backbones compute with the choice for training; <see cref="UseEvaluationArithmetic"/> switches to
    /// the evaluation one. Other devices are not checked.
    /// </summary>
    /// <param name="verdictsOfAllProcesses">Every rank's verdict on an arithmetic in a data-parallel run (see <see cref="ArithmeticCheck.Choose"/>).</param>
    public ArithmeticChoice CheckArithmetic(int batchImages, Precision precision, ConvolutionKernels kernels, Func<bool, bool[]>? verdictsOfAllProcesses = null)
    {
        var (height, width) = ImageSize.Height > 0 ? ImageSize : (32, 32);
        Arithmetic = Device.type == DeviceType.CPU
            ? ArithmeticCheck.Choose(Backbone, height, width, batchImages, precision, kernels, TorchRuntime.CpuHasBFloat16(), verdictsOfAllProcesses)
            : ArithmeticChoice.Unchecked(precision == Precision.Auto ? Precision.Float32 : precision);
        Arithmetic.Training.Apply(Backbones);
        return Arithmetic;
    }

    /// <summary>Makes every backbone compute with the evaluation arithmetic (float32).</summary>
    public void UseEvaluationArithmetic() => Arithmetic.Evaluation.Apply(Backbones);

    /// <summary>A freshly initialised model (seeded by <see cref="PretrainOptions.Seed"/>), normalising inputs with <paramref name="train"/>'s statistics.</summary>
    /// <param name="processes">The ranks of a data-parallel run; methods may split state over them.</param>
    /// <param name="fromInitialWeights">Start the backbone from <see cref="PretrainOptions.InitPath"/> when set (false: a resumed run's checkpoint replaces the weights anyway).</param>
    public static PretrainedModel Build(PretrainOptions options, ImageDataset train, int instanceCount, Device device, ProcessGroup? processes = null,
                                        bool fromInitialWeights = true)
    {
        if (options.Backbone.InputChannels != train.Channels)
            throw new ArgumentException($"{train.Source} has {train.Channels} channels, the backbone expects {options.Backbone.InputChannels}");
        var (mean, std) = train.ChannelStatistics();
        return Create(options, instanceCount, new InputNormalization(mean, std), (train.Height, train.Width), device, processes,
                      fromInitialWeights ? options.InitPath : null);
    }

    /// <summary>The model saved in a run folder's checkpoint.</summary>
    public static PretrainedModel Load(string runDirectory, string device = "cpu", int threads = 0)
    {
        string path = new RunFolder(runDirectory).Checkpoint;
        var header = Checkpoint.ReadHeader(path);
        var model = Create(header.Options, header.InstanceCount, new InputNormalization(header.ChannelMean, header.ChannelStd),
                           (header.ImageHeight, header.ImageWidth), TorchRuntime.Initialize(device, threads));
        var targets = model.Method.state_dict().ToDictionary(kv => "model." + kv.Key, kv => kv.Value);
        Checkpoint.Load(path, targets, skip: name => name.StartsWith(Trainer.OptimizerStatePrefix, StringComparison.Ordinal));
        model.CheckArithmetic(EvaluationBatchImages, Precision.Float32, header.Options.Kernels);
        model.UseEvaluationArithmetic();
        return model;
    }

    static PretrainedModel Create(PretrainOptions options, int instanceCount, InputNormalization normalization,
                                  (int Height, int Width) imageSize, Device device, ProcessGroup? processes = null, string? initialWeights = null)
    {
        manual_seed(options.Seed);
        var backbone = Backbone.Create(options.Backbone);
        // Before the method is made: momentum encoders start as copies of the backbone.
        if (initialWeights != null) InitialWeights.Load(initialWeights, backbone);
        var method = options.MethodDefinition.Create(backbone, instanceCount, options.Epochs, options.MethodSettings, processes);
        method.to(device);
        return new PretrainedModel(options, method, normalization, instanceCount, imageSize, device);
    }

    /// <summary>Images per forward when features are extracted, as the arithmetic check sees them.</summary>
    const int EvaluationBatchImages = 256;

    /// <summary>A checkpoint header for this model after <paramref name="completedEpochs"/> epochs and <paramref name="step"/> steps.</summary>
    public CheckpointHeader Header(int completedEpochs, long step, double trainingSeconds = 0, double trainingBudgetSeconds = 0) =>
        new(completedEpochs, step, InstanceCount, Normalization.Mean, Normalization.Std, Options, ImageSize.Height, ImageSize.Width,
            trainingSeconds, trainingBudgetSeconds);

    /// <summary>Frees the method's tensors.</summary>
    public void Dispose() => Method.Dispose();
}
