using Conic.Configuration;
using Conic.Distributed;
using Conic.Models;

namespace Conic.Methods;

/// <summary>SGD, SGD with LARS layer-wise trust ratios (SimCLR's large-batch optimiser), or AdamW (transformers').</summary>
public enum OptimizerKind
{
    /// <summary>Momentum SGD.</summary>
    Sgd,
    /// <summary>Momentum SGD with LARS trust ratios per layer.</summary>
    Lars,
    /// <summary>Adam with decoupled weight decay.</summary>
    AdamW,
}

/// <summary>A method's own learning rate (for batch 256), optimiser and weight decay, used where the run does not set them.</summary>
public sealed record TrainingDefaults(double LearningRate, OptimizerKind Optimizer, double WeightDecay)
{
    /// <summary>SGD at 0.12 (the Fashion-MNIST sweep in docs/results.md), weight decay 5e-4.</summary>
    public static readonly TrainingDefaults Sgd = new(0.12, OptimizerKind.Sgd, 5e-4);
    /// <summary>
    /// AdamW at 5e-4 for batch 256, weight decay 0.05: DINO's ViT recipe (lr 0.0005 · batch / 256) with the decay
    /// timm and solo-learn use for ViTs and ConvNeXts; every method's default on those backbones.
    /// </summary>
    public static readonly TrainingDefaults AdamW = new(5e-4, OptimizerKind.AdamW, 0.05);
}

/// <summary>The settings record of one method; each method file declares its own.</summary>
public abstract record MethodSettings;

/// <summary>
/// Everything the rest of Conic knows of a method: its name, what it is, its settings with their defaults, flags and
/// ranges, its training defaults, and how to build it. Each method file declares one (or, like MoCo v1/v2, two sharing
/// settings); <see cref="MethodRegistry"/> lists them.
/// </summary>
public sealed class MethodDefinition
{
    readonly Func<Backbone, int, int, MethodSettings, ProcessGroup, SslMethod> _create;

    MethodDefinition(string name, string summary, MethodSettings defaults, Settings<MethodSettings> settings, TrainingDefaults training,
                     Func<Backbone, int, int, MethodSettings, ProcessGroup, SslMethod> create)
    {
        Name = name;
        Summary = summary;
        Defaults = defaults;
        Settings = settings;
        Training = training;
        _create = create;
    }

    /// <summary>The CLI's name (<c>--method conic</c>), also the section of config files that holds the settings.</summary>
    public string Name { get; }
    /// <summary>One line saying what the method does (help, reports).</summary>
    public string Summary { get; }
    /// <summary>The method's settings record with its defaults.</summary>
    public MethodSettings Defaults { get; }
    /// <summary>The method's own flags, ranges and help lines.</summary>
    public Settings<MethodSettings> Settings { get; }
    /// <summary>The learning rate, optimiser and weight decay the method trains with unless told otherwise.</summary>
    public TrainingDefaults Training { get; }

    /// <param name="create">The method from a backbone, the number of instances, the number of epochs and its settings.</param>
    public static MethodDefinition Of<T>(string name, string summary, T defaults, Settings<T> settings, Func<Backbone, int, int, T, SslMethod> create,
                                         TrainingDefaults? training = null) where T : MethodSettings =>
        Of(name, summary, defaults, settings, (backbone, instances, epochs, s, _) => create(backbone, instances, epochs, s), training);

    /// <param name="create">As above, also given the processes of a data-parallel run, for methods whose state is split over them.</param>
    public static MethodDefinition Of<T>(string name, string summary, T defaults, Settings<T> settings, Func<Backbone, int, int, T, ProcessGroup, SslMethod> create,
                                         TrainingDefaults? training = null) where T : MethodSettings =>
        new(name, summary, defaults, settings.Within<MethodSettings>(s => (T)s, (_, t) => t), training ?? TrainingDefaults.Sgd,
            (backbone, instances, epochs, s, processes) => create(backbone, instances, epochs, (T)s, processes));

    /// <summary>Whether <paramref name="settings"/> are this method's kind of settings.</summary>
    public bool Owns(MethodSettings settings) => settings.GetType() == Defaults.GetType();

    /// <param name="processes">The ranks of a data-parallel run (default: one process).</param>
    public SslMethod Create(Backbone backbone, int instanceCount, int epochs, MethodSettings settings, ProcessGroup? processes = null)
    {
        Settings.ThrowIfInvalid(settings);
        var method = _create(backbone, instanceCount, epochs, settings, processes ?? ProcessGroup.Single);
        method.UseProcesses(processes ?? ProcessGroup.Single);
        return method;
    }
}
