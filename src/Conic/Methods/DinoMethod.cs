using Conic.Configuration;
using Conic.Losses;
using Conic.Models;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;
using F = TorchSharp.torch.nn.functional;

namespace Conic.Methods;

/// <summary>DINO (Caron et al. 2021): self-distillation into a momentum teacher with centring and sharpening, multi-crop.</summary>
public sealed record DinoOptions : MethodSettings
{
    /// <summary>K, the outputs both distributions are over (65,536 on ImageNet; 4,096 in solo-learn's CIFAR recipe).</summary>
    public int Prototypes { get; init; } = 4096;
    /// <summary>Size of the normalised bottleneck in front of the last layer.</summary>
    public int BottleneckDim { get; init; } = 256;
    /// <summary>τ_s, the student's temperature.</summary>
    public double StudentTemperature { get; init; } = 0.1;
    /// <summary>τ_t after its warm-up (sharper than the student's).</summary>
    public double TeacherTemperature { get; init; } = 0.07;
    /// <summary>τ_t at the start: lower, for a stable start.</summary>
    public double WarmupTeacherTemperature { get; init; } = 0.04;
    /// <summary>Share of training over which τ_t rises to <see cref="TeacherTemperature"/> (the paper: 30 of 300 epochs).</summary>
    public double TeacherWarmup { get; init; } = 0.1;
    /// <summary>Momentum of the centre's moving average.</summary>
    public double CenterMomentum { get; init; } = 0.9;
    /// <summary>Teacher EMA momentum at the start, rising to 1 on a cosine (the paper's).</summary>
    public double BaseMomentum { get; init; } = 0.996;
    /// <summary>The last layer stays fixed for this many epochs (the paper's first-epoch freeze, against early collapse).</summary>
    public int FreezeLastLayerEpochs { get; init; } = 1;
}

/// <summary>
/// DINO (Caron et al. 2021): a student (backbone + head) matches, for every view, the teacher's output distribution of
/// the other main views (<see cref="DinoLosses.CrossViewEntropy"/>). The teacher is a momentum copy of the student;
/// its logits are centred by a moving mean and sharpened by a low temperature, which together keep it from collapsing
/// without negatives. Small multi-crops (<c>--small-crops</c>) go through the student only.
/// </summary>
public sealed class DinoMethod : SslMethod
{
    /// <summary>solo-learn's CIFAR recipe: LARS at lr 0.3 with weight decay 1e-6.</summary>
    public static readonly MethodDefinition Definition = MethodDefinition.Of("dino",
        "DINO (Caron et al. 2021): a student matches a centred, sharpened momentum teacher across views; no negatives", new DinoOptions(),
        new Settings<DinoOptions>()
            .Integer("--dino-prototypes", "K", "outputs of the head (the distributions' size)", o => o.Prototypes, (o, v) => o with { Prototypes = v }, ValueRange.AtLeast(2))
            .Integer("--dino-bottleneck-dim", "D", "size of the normalised bottleneck before the last layer", o => o.BottleneckDim,
                     (o, v) => o with { BottleneckDim = v }, ValueRange.AtLeast(1))
            .Number("--dino-student-temperature", "T", "the student's temperature", o => o.StudentTemperature, (o, v) => o with { StudentTemperature = v },
                    ValueRange.Temperature)
            .Number("--dino-teacher-temperature", "T", "the teacher's temperature after its warm-up", o => o.TeacherTemperature,
                    (o, v) => o with { TeacherTemperature = v }, ValueRange.Temperature)
            .Number("--dino-warmup-teacher-temperature", "T", "the teacher's temperature at the start", o => o.WarmupTeacherTemperature,
                    (o, v) => o with { WarmupTeacherTemperature = v }, ValueRange.Temperature)
            .Number("--dino-teacher-warmup", "SHARE", "share of training over which the teacher's temperature rises", o => o.TeacherWarmup,
                    (o, v) => o with { TeacherWarmup = v }, ValueRange.UnitInterval)
            .Number("--dino-center-momentum", "M", "momentum of the centre of the teacher's logits", o => o.CenterMomentum,
                    (o, v) => o with { CenterMomentum = v }, ValueRange.Momentum)
            .Number("--dino-momentum", "M", "teacher momentum at the start (rises to 1)", o => o.BaseMomentum, (o, v) => o with { BaseMomentum = v },
                    ValueRange.UnitInterval)
            .Integer("--dino-freeze-last-layer", "EPOCHS", "epochs at the start during which the head's last layer stays fixed", o => o.FreezeLastLayerEpochs,
                     (o, v) => o with { FreezeLastLayerEpochs = v }, ValueRange.NonNegative),
        (backbone, _, epochs, options) => new DinoMethod(backbone, options, epochs),
        new TrainingDefaults(0.3, OptimizerKind.Lars, 1e-6));

    readonly Backbone backbone;
    readonly DinoHead head;
    readonly MomentumEncoder teacher;
    readonly Tensor center;
    readonly DinoOptions _options;
    readonly double _lastLayerFrozenUntil;

    /// <summary>DINO on <paramref name="backbone"/>; <paramref name="epochs"/> places the last layer's freeze.</summary>
    public DinoMethod(Backbone backbone, DinoOptions options, int epochs) : base("dino")
    {
        _options = options;
        _lastLayerFrozenUntil = (double)options.FreezeLastLayerEpochs / epochs;
        this.backbone = backbone;
        // The head's hidden width follows the features (solo-learn: 2,048 for ResNet-18's 512).
        int hidden = 4 * backbone.FeatureDim;
        head = new DinoHead(backbone.FeatureDim, hidden, options.BottleneckDim, options.Prototypes);
        teacher = new MomentumEncoder((backbone, Backbone.Create(backbone.Options)), (head, new DinoHead(backbone.FeatureDim, hidden, options.BottleneckDim, options.Prototypes)));
        center = zeros(1, options.Prototypes);
        RegisterComponents();
    }

    /// <inheritdoc/>
    public override Backbone Backbone => backbone;

    /// <inheritdoc/>
    public override bool UsesSmallCrops => true;

    /// <inheritdoc/>
    public override MethodLoss TrainingStep(TrainingBatch batch)
    {
        head.FreezeLastLayer = batch.Progress < _lastLayerFrozenUntil;
        var groups = ViewsByResolution(batch);
        var student = cat(groups.Select(g => head.call(backbone.call(g))).ToArray(), 0).chunk(batch.Views.Count, 0);

        var teacherLogits = teacher.call(groups[0]);
        double temperature = DinoLosses.TeacherTemperature(_options.WarmupTeacherTemperature, _options.TeacherTemperature, _options.TeacherWarmup, batch.Progress);
        var targets = DinoLosses.TeacherTargets(teacherLogits, center, temperature).chunk(2, 0);
        var loss = DinoLosses.CrossViewEntropy(targets, student, _options.StudentTemperature);
        DinoLosses.UpdateCenter(center, teacherLogits, _options.CenterMomentum, Processes);
        return new MethodLoss(loss, new[] { new LossTerm("distillation", loss) });
    }

    /// <inheritdoc/>
    public override void AfterOptimizerStep(TrainingBatch batch, MethodLoss loss) =>
        teacher.Update(MomentumEncoder.CosineMomentum(_options.BaseMomentum, batch.Progress), backbone, head);
}

/// <summary>
/// DINO's head: a 3-layer MLP with GELUs to a bottleneck, L2-normalised, then a last layer whose rows are normalised
/// (weight normalisation with the norm fixed at 1), so that every output is a cosine.
/// </summary>
public sealed class DinoHead : Module<Tensor, Tensor>
{
    readonly Sequential mlp;
    readonly Parameter last_layer;

    /// <summary>Features [B, <paramref name="inputDim"/>] → logits [B, <paramref name="outputs"/>].</summary>
    public DinoHead(int inputDim, int hiddenDim, int bottleneckDim, int outputs) : base(nameof(DinoHead))
    {
        mlp = Sequential(
            ("0", Linear(inputDim, hiddenDim)), ("1", GELU()),
            ("2", Linear(hiddenDim, hiddenDim)), ("3", GELU()),
            ("4", Linear(hiddenDim, bottleneckDim)));
        // Normal (std 0.02) and zero biases, as the reference initialises the MLP (its truncation at ±2 never binds;
        // TorchSharp 0.107's init.trunc_normal_ swaps mean and std, see VisionTransformer).
        using (no_grad())
        {
            foreach (var layer in mlp.children().OfType<Linear>())
            {
                init.normal_(layer.weight!, std: 0.02);
                init.zeros_(layer.bias!);
            }
        }
        last_layer = Parameter(empty(outputs, bottleneckDim));
        init.kaiming_uniform_(last_layer, a: Math.Sqrt(5));
        RegisterComponents();
    }

    /// <summary>While set, the last layer gets no gradient (it is used detached).</summary>
    public bool FreezeLastLayer { get; set; }

    /// <inheritdoc/>
    public override Tensor forward(Tensor features)
    {
        var bottleneck = F.normalize(mlp.call(features), dim: 1);
        var rows = F.normalize(FreezeLastLayer ? last_layer.detach() : last_layer, dim: 1);
        return F.linear(bottleneck, rows);
    }
}
