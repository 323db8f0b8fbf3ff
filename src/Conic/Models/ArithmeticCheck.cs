using Conic.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Conic.Models;

/// <summary>How far one arithmetic landed from float64 on the same network and inputs, worst of the repeats.</summary>
/// <param name="Error">‖x − x64‖ / ‖x64‖ of the worst result: the network's features, or one convolution's output, input gradient or weight gradient.</param>
/// <param name="Where">That result (e.g. "layer1.0.conv1 weight gradient"); NaN errors mean it was not finite.</param>
public sealed record ArithmeticTrial(ConvolutionArithmetic Arithmetic, double Error, string Where, double Tolerance)
{
    /// <summary>Who rejected this arithmetic without it failing here: a forced verdict (<see cref="ForcedVerdicts"/>) or another rank's check.</summary>
    public string? RejectedBy { get; init; }

    /// <summary>Whether the arithmetic passed: not rejected, and its error within the tolerance.</summary>
    public bool Agrees => RejectedBy == null && Error <= Tolerance;

    /// <summary>The trial in one line: the arithmetic, and where and by how much it was off (or who rejected it).</summary>
    public override string ToString() => RejectedBy != null ? $"{Arithmetic}: rejected by {RejectedBy}"
        : double.IsFinite(Error) ? $"{Arithmetic}: {Where} off by {Error:P2} from float64 (tolerance {Tolerance:P2})"
        : $"{Arithmetic}: {Where} not finite";
}

/// <summary>The arithmetic that training and evaluation use, and the trials that chose it.</summary>
public sealed record ArithmeticChoice(ConvolutionArithmetic Training, ConvolutionArithmetic Evaluation, IReadOnlyList<ArithmeticTrial> Trials)
{
    /// <summary>
    /// Whether float32 oneDNN failed at the CPU's full instruction set, so that only the native kernels (about 3x
    /// slower) were left: oneDNN held to AVX2 (<see cref="ConvolutionArithmetic.IsaCapVariable"/>, set before the
    /// process starts) computed right where AVX-512 did not, at about 0.75x of full speed.
    /// </summary>
    public bool WantsOneDnnIsaCap => ConvolutionArithmetic.OneDnnIsaCap == null &&
                                     Trials.Any(t => t.Arithmetic == ConvolutionArithmetic.Float32OneDnn && !t.Agrees);

    /// <summary>Without a check (GPUs): the requested precision, oneDNN left as it is.</summary>
    public static ArithmeticChoice Unchecked(Precision precision) =>
        new(precision == Precision.BFloat16 ? ConvolutionArithmetic.BFloat16OneDnn : ConvolutionArithmetic.Float32OneDnn,
            ConvolutionArithmetic.Float32OneDnn, []);

    /// <summary>One line: what was chosen and, where something was passed over, why.</summary>
    public string Describe()
    {
        if (Trials.Count == 0) return $"{Training} (not checked on this device)";
        var chosen = Trials.First(t => t.Arithmetic == Training);
        string evaluation = Evaluation == Training ? "" : $"; evaluation in {Evaluation}";
        string why = Trials.Any(t => !t.Agrees) ? $"; {Rejections()}" : "";
        return $"{Training}, checked against float64 on this network (worst: {chosen.Where}, {chosen.Error:P3}){evaluation}{why}";
    }

    /// <summary>What was passed over and why, naming the CPU.</summary>
    public string Rejections() =>
        $"rejected on {TorchRuntime.CpuDescription()}: {string.Join("; ", Trials.Where(t => !t.Agrees).Select(t => t.ToString()))}";
}

/// <summary>
/// Thrown instead of falling back to the native kernels when the host can restart the process with oneDNN held to
/// AVX2 (<see cref="ArithmeticCheck.RestartWithIsaCapAllowed"/>): the command line reruns itself with
/// <see cref="ConvolutionArithmetic.IsaCapVariable"/> set, and the check runs again there.
/// </summary>
public sealed class OneDnnIsaCapNeeded(string reason) : Exception(reason);

/// <summary>
/// Checks, on the run's own network and input shape, that this CPU computes convolutions right: one forward and
/// backward per candidate arithmetic, repeated (the faults seen are nondeterministic), each compared with float64.
/// oneDNN's AVX-512 kernels in libtorch 2.10 were seen to give NaN or wrong results for small channel counts on
/// AMD Zen 5, in bfloat16 and, with two threads, in float32; CPU flags cannot tell, so the arithmetic is measured.
/// </summary>
public static class ArithmeticCheck
{
    const int Repeats = 3;
    /// <summary>Pixels in the check's input batch: enough images for every thread (64 of 28 px), few enough for a large network to take seconds.</summary>
    const long PixelBudget = 50_000;
    /// <summary>Worst errors measured where the kernels are right: bfloat16 0.32 %, float32 6e-6 (bench: arithmetic); the faults seen were NaN or tens of per cent.</summary>
    public const double BFloat16Tolerance = 0.02;
    /// <summary>The largest relative error float32 kernels may show against float64 (worst seen where right: 6e-6).</summary>
    public const double Float32Tolerance = 1e-4;

    /// <summary>
    /// Chooses the fastest arithmetic that agrees with float64 among those <paramref name="precision"/> and
    /// <paramref name="kernels"/> allow, for training (<paramref name="batchImages"/> images per forward) and for
    /// evaluation (float32). An explicit choice that disagrees, or no agreeing arithmetic at all, is an error naming
    /// the CPU and the layer. Leaves the network, its BatchNorm statistics and the random number stream untouched.
    /// </summary>
    /// <param name="verdictsOfAllProcesses">
    /// In a data-parallel run, every rank's verdict on an arithmetic given this rank's (rank order): an arithmetic any
    /// rank rejects is rejected by all, so that every rank measures the same candidates and chooses the same.
    /// </param>
    public static ArithmeticChoice Choose(Backbone backbone, int height, int width, int batchImages, Precision precision,
                                          ConvolutionKernels kernels, bool cpuHasBFloat16, Func<bool, bool[]>? verdictsOfAllProcesses = null)
    {
        // A ViT's only convolution is its patch embedding; its matrix products are libtorch's float32 BLAS throughout.
        if (backbone is not ResNet resnet)
            return precision == Precision.BFloat16
                ? throw new ConicException($"--precision bf16: {backbone.Options.ArchitectureName} computes in float32 (bfloat16 is for ResNets' convolutions)")
                : ArithmeticChoice.Unchecked(Precision.Float32);
        var float32 = kernels switch
        {
            ConvolutionKernels.OneDnn => new[] { ConvolutionArithmetic.Float32OneDnn },
            ConvolutionKernels.Native => new[] { ConvolutionArithmetic.Float32Native },
            _ => new[] { ConvolutionArithmetic.Float32OneDnn, ConvolutionArithmetic.Float32Native },
        };
        var bfloat16 = kernels == ConvolutionKernels.Native ? new ConvolutionArithmetic(true, false) : ConvolutionArithmetic.BFloat16OneDnn;
        var training = precision switch
        {
            Precision.BFloat16 => new[] { bfloat16 },
            Precision.Float32 => float32,
            // bfloat16 pays only with the CPU's bfloat16 instructions, which a cap at AVX2 takes away.
            _ => cpuHasBFloat16 && kernels != ConvolutionKernels.Native && ConvolutionArithmetic.OneDnnIsaCap == null
                ? float32.Prepend(bfloat16).ToArray() : float32,
        };
        // Slower arithmetics are only tried when the faster ones fail.
        var trials = Measure(resnet, height, width, batchImages, training.Union(float32).ToArray(),
                             done: measured => Fastest(measured, training) != null && Fastest(measured, float32) != null,
                             verdictsOfAllProcesses);
        var choice = Select(trials, training, float32);
        if (RestartWithIsaCapAllowed && choice.WantsOneDnnIsaCap)
            throw new OneDnnIsaCapNeeded(choice.Rejections());
        return choice;
    }

    /// <summary>Set by a host (the conic command) that can rerun itself with oneDNN held to AVX2; see <see cref="OneDnnIsaCapNeeded"/>.</summary>
    public static bool RestartWithIsaCapAllowed { get; set; }

    /// <summary>The first of <paramref name="candidates"/> (fastest first) that agrees, looking no further than the measured ones.</summary>
    static ConvolutionArithmetic? Fastest(IReadOnlyList<ArithmeticTrial> trials, IEnumerable<ConvolutionArithmetic> candidates) =>
        candidates.Select(c => trials.FirstOrDefault(t => t.Arithmetic == c)).TakeWhile(t => t != null).FirstOrDefault(t => t!.Agrees)?.Arithmetic;

    /// <summary>The fastest agreeing of <paramref name="training"/> and of <paramref name="evaluation"/> (each fastest first), or an error naming the CPU and what failed.</summary>
    public static ArithmeticChoice Select(IReadOnlyList<ArithmeticTrial> trials, IReadOnlyList<ConvolutionArithmetic> training,
                                          IReadOnlyList<ConvolutionArithmetic> evaluation)
    {
        var trainWith = Fastest(trials, training);
        var evaluateWith = Fastest(trials, evaluation);
        if (trainWith == null || evaluateWith == null)
        {
            var candidates = trainWith == null ? training : evaluation;
            var failed = trials.Where(t => candidates.Contains(t.Arithmetic));
            string hint = candidates.Count == 1 ? "; let Conic choose (--precision auto --conv-kernels auto)" : "";
            throw new ConicException($"this CPU ({TorchRuntime.CpuDescription()}) computes the network's convolutions wrong: " +
                                     string.Join("; ", failed.Select(t => t.ToString())) + hint);
        }
        return new ArithmeticChoice(trainWith, evaluateWith, trials);
    }

    /// <summary>
    /// Compares each arithmetic with float64: the whole network's features (eval mode), and every convolution of a
    /// distinct shape alone — its output, input gradient and weight gradient. Whole-network gradients are not compared:
    /// a ReLU whose input sits near zero flips between float32 and float64, and on small feature maps one flip moves a
    /// gradient by tenths of a per cent, so only the convolutions alone have tight, kink-free references.
    /// An arithmetic that <see cref="ForcedVerdicts"/> rejects is not measured.
    /// </summary>
    /// <param name="done">Stops before the next arithmetic once it holds for the trials so far.</param>
    /// <param name="verdictsOfAllProcesses">See <see cref="Choose"/>.</param>
    public static IReadOnlyList<ArithmeticTrial> Measure(ResNet backbone, int height, int width, int batchImages,
                                                         IReadOnlyList<ConvolutionArithmetic> arithmetics,
                                                         Func<IReadOnlyList<ArithmeticTrial>, bool>? done = null,
                                                         Func<bool, bool[]>? verdictsOfAllProcesses = null)
    {
        bool oneDnnWas = TorchRuntime.OneDnnEnabled;
        bool bfloat16Was = backbone.BFloat16Compute;
        var randomState = random.get_rng_state();  // the float64 copy's initialisation must not move the run's random numbers
        using var scope = NewDisposeScope();
        try
        {
            var device = backbone.parameters().First().device;
            long images = Math.Clamp(PixelBudget / ((long)height * width), 2, Math.Max(2, batchImages));
            var generator = new Generator(12345, device);
            var input = randn(new[] { images, (long)backbone.Options.InputChannels, height, width }, generator: generator, device: device);
            var layers = DistinctConvolutions(backbone, height, width)
                .Select(c => new LayerCase(c.Name, c.Conv, backbone.InTrainingLayout(c.Conv, randn(new[] { images, c.Conv.weight!.shape[1], c.Height, c.Width }, generator: generator, device: device))))
                .ToArray();
            foreach (var layer in layers)
                layer.GradientOutput = randn(Convolve(layer, ScalarType.Float32, input: null).shape, generator: generator, device: device);

            ConvolutionArithmetic.Float32Native.Apply([]);
            var referenceFeatures = Features(backbone, input, ScalarType.Float64);
            var referenceLayers = layers.Select(l => ForwardBackward(l, ScalarType.Float64)).ToArray();
            var trials = new List<ArithmeticTrial>();
            foreach (var arithmetic in arithmetics)
            {
                if (done?.Invoke(trials) == true) break;
                var type = arithmetic.BFloat16 ? ScalarType.BFloat16 : ScalarType.Float32;
                var trial = new ArithmeticTrial(arithmetic, 0, "", arithmetic.BFloat16 ? BFloat16Tolerance : Float32Tolerance)
                {
                    RejectedBy = ForcedVerdicts.Rejection(arithmetic),
                };
                ArithmeticTrial Worse(ArithmeticTrial current, double error, string where) =>
                    error > current.Error || double.IsNaN(error) ? current with { Error = error, Where = where } : current;
                for (int repeat = 0; repeat < Repeats && trial.Agrees; repeat++)
                {
                    arithmetic.Apply([backbone]);
                    trial = Worse(trial, RelativeError(Features(backbone, input, ScalarType.Float32), referenceFeatures), "the network's features");
                    for (int i = 0; i < layers.Length && trial.Agrees; i++)
                    {
                        var results = ForwardBackward(layers[i], type);
                        foreach (var (result, what) in results.Zip(Results))
                            trial = Worse(trial, RelativeError(result, referenceLayers[i][Array.IndexOf(Results, what)]), $"{layers[i].Name} {what}");
                    }
                }
                if (verdictsOfAllProcesses?.Invoke(trial.Agrees) is bool[] verdicts && trial.Agrees && Array.IndexOf(verdicts, false) is int rank and >= 0)
                    trial = trial with { RejectedBy = $"rank {rank}'s check" };
                trials.Add(trial);
            }
            return trials;
        }
        finally
        {
            TorchRuntime.SetOneDnn(oneDnnWas);
            backbone.BFloat16Compute = bfloat16Was;
            random.set_rng_state(randomState);
        }
    }

    static readonly string[] Results = ["output", "input gradient", "weight gradient"];

    /// <summary>A convolution of the network and the inputs its check feeds it.</summary>
    sealed record LayerCase(string Name, TorchSharp.Modules.Conv2d Conv, Tensor Input)
    {
        public Tensor? GradientOutput { get; set; }
    }

    /// <summary>The features of the network in eval mode (its running statistics; no gradients), computed in <paramref name="type"/>.</summary>
    static Tensor Features(ResNet backbone, Tensor input, ScalarType type)
    {
        using var noGrad = no_grad();
        bool training = backbone.training;
        backbone.eval();
        try
        {
            if (type != ScalarType.Float64) return backbone.call(input).to(ScalarType.Float64);
            using var copy = new ResNet(backbone.Options);
            copy.to(input.device);
            copy.load_state_dict(backbone.state_dict());
            copy.to(ScalarType.Float64);
            copy.eval();
            return copy.call(input.to(ScalarType.Float64)).to(ScalarType.Float64);
        }
        finally
        {
            backbone.train(training);
        }
    }

    /// <summary>One convolution's output, input gradient and weight gradient in <paramref name="type"/>, as float64.</summary>
    static Tensor[] ForwardBackward(LayerCase layer, ScalarType type)
    {
        var input = layer.Input.to(type).detach().requires_grad_(true);
        var weight = layer.Conv.weight!.detach().to(type).requires_grad_(true);
        var output = Convolve(layer, type, input, weight);
        output.backward([layer.GradientOutput!.to(type)]);
        return [output.detach().to(ScalarType.Float64), input.grad!.to(ScalarType.Float64), weight.grad!.to(ScalarType.Float64)];
    }

    static Tensor Convolve(LayerCase layer, ScalarType type, Tensor? input, Tensor? weight = null)
    {
        using var noGrad = input is null ? no_grad() : null;
        return MixedPrecision.Convolve(layer.Conv, input ?? layer.Input.to(type), weight ?? layer.Conv.weight!.to(type));
    }

    /// <summary>The network's convolutions with the input size each sees, one per distinct shape (named by its first).</summary>
    static IEnumerable<(string Name, TorchSharp.Modules.Conv2d Conv, long Height, long Width)> DistinctConvolutions(ResNet backbone, long height, long width)
    {
        var names = backbone.named_modules().Where(m => m.module is TorchSharp.Modules.Conv2d).ToDictionary(m => m.module, m => m.name);
        return backbone.ConvolutionInputs(height, width)
                       .DistinctBy(c => (c.Conv.weight!.shape[0], c.Conv.weight.shape[1], c.Conv.weight.shape[2], c.Conv.stride[0], c.Height, c.Width))
                       .Select(c => (names[c.Conv], c.Conv, c.Height, c.Width));
    }

    /// <summary>‖a − b‖ / ‖b‖, NaN when a is not finite; 0 when both are zero (a zero gradient computed as zero).</summary>
    static double RelativeError(Tensor actual, Tensor reference)
    {
        if (!actual.isfinite().all().item<bool>()) return double.NaN;
        double difference = actual.sub(reference).norm().item<double>(), size = reference.norm().item<double>();
        return difference == 0 ? 0 : difference / size;
    }
}
