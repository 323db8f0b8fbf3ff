using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Conic.Models;

/// <summary>A pretrained (or random) backbone with a head for a labelled task, fine-tuned end to end or head only.</summary>
public abstract class TaskNetwork(string name) : nn.Module<Tensor, Tensor>(name)
{
    /// <summary>The backbone the task's head sits on.</summary>
    public abstract Backbone Backbone { get; }

    /// <summary>Every parameter outside the backbone, for frozen-backbone training.</summary>
    public abstract IEnumerable<Parameter> HeadParameters { get; }
}

/// <summary>Image classification: the backbone's pooled features and a linear layer to class logits [B, Classes].</summary>
public sealed class ClassificationNetwork : TaskNetwork
{
    readonly Backbone backbone;
    readonly Linear fc;

    /// <summary>A linear layer from <paramref name="backbone"/>'s pooled features to <paramref name="classes"/> logits.</summary>
    public ClassificationNetwork(Backbone backbone, int classes) : base(nameof(ClassificationNetwork))
    {
        this.backbone = backbone;
        fc = nn.Linear(backbone.FeatureDim, classes);
        RegisterComponents();
    }

    /// <inheritdoc/>
    public override Backbone Backbone => backbone;
    /// <inheritdoc/>
    public override IEnumerable<Parameter> HeadParameters => fc.parameters();
    /// <summary>The linear layer, for writers of other formats (ONNX).</summary>
    internal Linear Classifier => fc;

    /// <summary>Class logits [B, classes] of images [B, C, H, W].</summary>
    public override Tensor forward(Tensor images) => fc.call(backbone.call(images));
}
