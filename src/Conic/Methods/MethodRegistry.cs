using Conic.Models;

namespace Conic.Methods;

/// <summary>A method's own learning rate (for batch 256), optimiser and weight decay.</summary>
public sealed record TrainingDefaults(double LearningRate, Training.OptimizerKind Optimizer, double WeightDecay);

/// <summary>
/// Every pretraining method by its CLI name. To add a method: one file deriving <see cref="SslMethod"/>, one line
/// here, one test (see CONTRIBUTING in the README).
/// </summary>
public static class MethodRegistry
{
    delegate SslMethod Factory(ResNet backbone, int instanceCount, Training.PretrainOptions options);

    static readonly IReadOnlyDictionary<string, Factory> Factories = new Dictionary<string, Factory>(StringComparer.OrdinalIgnoreCase)
    {
        ["conic"] = (backbone, instances, options) => new ConicMethod(backbone, instances, options.Conic),
        ["instdisc"] = (backbone, instances, options) => new InstDiscMethod(backbone, instances, options.InstDisc),
        ["mocov1"] = (backbone, instances, options) => new MocoMethod(backbone, instances, options.Moco, version2: false),
        ["mocov2"] = (backbone, instances, options) => new MocoMethod(backbone, instances, options.Moco, version2: true),
        ["simclr"] = (backbone, _, options) => new SimclrMethod(backbone, options.Simclr),
        ["byol"] = (backbone, _, options) => new ByolMethod(backbone, options.Byol),
        ["swav"] = (backbone, _, options) => new SwavMethod(backbone, options.Swav, options.Epochs),
    };

    /// <summary>
    /// What a method trains with when --lr, --optimizer or --wd are not given (learning rate for batch 256). All: SGD at
    /// 0.12 (the Fashion-MNIST sweep in the README), weight decay 5e-4. SwAV: lr 0.5, which learned faster at 30 epochs
    /// (kNN 76.6 % against 74.3 % at 0.12; 1.0 gave 76.4 %). BYOL: solo-learn's CIFAR recipe, LARS at lr 1.0 with weight
    /// decay 1e-5 (30 epochs: kNN 73.8 % against 72.2 % with the SGD defaults).
    /// </summary>
    public static TrainingDefaults DefaultsFor(string method) => method.ToLowerInvariant() switch
    {
        "swav" => new(0.5, Training.OptimizerKind.Sgd, 5e-4),
        "byol" => new(1.0, Training.OptimizerKind.Lars, 1e-5),
        _ => new(0.12, Training.OptimizerKind.Sgd, 5e-4),
    };

    public static IEnumerable<string> Names => Factories.Keys;

    public static SslMethod Create(string name, ResNet backbone, int instanceCount, Training.PretrainOptions options) =>
        Factories.TryGetValue(name, out var factory)
            ? factory(backbone, instanceCount, options)
            : throw new ConicException($"--method: unknown method '{name}' (known: {string.Join(", ", Names)})");
}
