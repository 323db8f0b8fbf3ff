using Conic.Models;

namespace Conic.Methods;

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
    /// SGD learning rate for batch 256 when --lr is not given: 0.12 from the Fashion-MNIST sweep (README); SwAV 0.5,
    /// which learned faster at 30 epochs (kNN 76.6 % against 74.3 % at 0.12; 1.0 gave 76.4 %).
    /// </summary>
    public static double DefaultLearningRate(string method) => method.Equals("swav", StringComparison.OrdinalIgnoreCase) ? 0.5 : 0.12;

    public static IEnumerable<string> Names => Factories.Keys;

    public static SslMethod Create(string name, ResNet backbone, int instanceCount, Training.PretrainOptions options) =>
        Factories.TryGetValue(name, out var factory)
            ? factory(backbone, instanceCount, options)
            : throw new ConicException($"--method: unknown method '{name}' (known: {string.Join(", ", Names)})");
}
