using Conic.Distributed;
using Conic.Models;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Conic.Methods;

/// <summary>One named term of a method's loss, a scalar tensor (logged per epoch).</summary>
public sealed record LossTerm(string Name, Tensor Value);

/// <summary>
/// What one training step of a method returns: the loss to back-propagate, its terms, and (for methods with a
/// memory bank or queue) the detached embeddings that <see cref="SslMethod.AfterOptimizerStep"/> stores.
/// </summary>
public sealed record MethodLoss(Tensor Total, IReadOnlyList<LossTerm> Terms, Tensor? Memorised = null);

/// <summary>
/// One step's input: augmented views of the same B images (Views[0] and Views[1] are the two main views, each
/// [B, C, H, W]; any further views are small multi-crops), each image's instance index [B] int64 in 0..N-1, how far
/// training has come (0 to 1), and the seeded generator a method draws its own random numbers from (so that a
/// resumed run repeats them). <see cref="LearningRate"/> is the network's rate at this step, for methods that update
/// parameters of their own. <see cref="Labels"/> [B] int64: the images' classes, for methods that need them (supervised).
/// </summary>
public sealed record TrainingBatch(IReadOnlyList<Tensor> Views, Tensor InstanceIndices, double Progress, Generator Random, double LearningRate = 0,
                                   Tensor? Labels = null);

/// <summary>Parameters that share a learning-rate multiplier and a weight decay.</summary>
public sealed record ParameterGroup(string Name, IReadOnlyList<Parameter> Parameters, double LearningRateScale, double WeightDecay);

/// <summary>
/// What every self-supervised method shares: a backbone whose features are evaluated and exported, and a training
/// step on two augmented views of a batch. A method adds its heads and its loss; the trainer owns the loop.
/// </summary>
public abstract class SslMethod : nn.Module
{
    /// <summary>A method module called <paramref name="name"/> (its state's name in checkpoints).</summary>
    protected SslMethod(string name) : base(name)
    {
    }

    /// <summary>
    /// The encoder being pretrained. Subclasses return their field <c>backbone</c>; a field here would register a
    /// second copy of every backbone parameter.
    /// </summary>
    public abstract Backbone Backbone { get; }

    /// <summary>
    /// The processes of a data-parallel run (<see cref="ProcessGroup.Single"/> by default). The batch a step gets is
    /// this rank's share of the global batch; methods whose loss couples the samples gather what the math needs.
    /// </summary>
    protected ProcessGroup Processes { get; private set; } = ProcessGroup.Single;

    /// <summary>Trains as one of <paramref name="processes"/>' ranks (set when the method is built).</summary>
    public void UseProcesses(ProcessGroup processes) => Processes = processes;

    /// <summary>
    /// The state (state_dict names) this rank holds only a contiguous block of rows of, with the row count of the whole
    /// (checkpoints gather and scatter them); an optimiser group of the same name is split the same way.
    /// </summary>
    public virtual IReadOnlyDictionary<string, long> RowShardedState => new Dictionary<string, long>();

    /// <summary>The loss for one batch.</summary>
    public abstract MethodLoss TrainingStep(TrainingBatch batch);

    /// <summary>Whether the method trains on the images' labels (<see cref="TrainingBatch.Labels"/>).</summary>
    public virtual bool NeedsLabels => false;

    /// <summary>Whether the method uses the small multi-crop views (Views[2..]); others must not be given any.</summary>
    public virtual bool UsesSmallCrops => false;

    /// <summary>
    /// State that follows the optimiser step (momentum encoders, queues, memory banks), still inside the step's
    /// dispose scope.
    /// </summary>
    public virtual void AfterOptimizerStep(TrainingBatch batch, MethodLoss loss)
    {
    }

    /// <summary>
    /// How the optimiser treats the trainable parameters (momentum copies are excluded: they do not require
    /// gradients); by default all share the base rate and weight decay.
    /// </summary>
    public virtual IReadOnlyList<ParameterGroup> ParameterGroups(double weightDecay) =>
        new[] { new ParameterGroup("all", TrainableParameters().ToArray(), 1.0, weightDecay) };

    /// <summary>
    /// The two main views stacked into one batch [2B, C, H, W]: one forward pass serves both, and BatchNorm sees 2B
    /// samples. Rows 0..B-1 are the first view.
    /// </summary>
    protected static Tensor BothViews(TrainingBatch batch) => cat(new[] { batch.Views[0], batch.Views[1] }, 0);

    /// <summary>
    /// The views in batches of one resolution, so that each shares a forward pass: the two main views
    /// (<see cref="BothViews"/>), then the small multi-crops when there are any.
    /// </summary>
    protected static List<Tensor> ViewsByResolution(TrainingBatch batch)
    {
        var groups = new List<Tensor> { BothViews(batch) };
        if (batch.Views.Count > 2) groups.Add(cat(batch.Views.Skip(2).ToArray(), 0));
        return groups;
    }

    /// <summary>Each image's instance index twice, matching <see cref="BothViews"/>.</summary>
    protected static Tensor BothViewTargets(TrainingBatch batch) => cat(new[] { batch.InstanceIndices, batch.InstanceIndices }, 0);

    /// <summary>The parameters that need gradients, with their names, in registration order.</summary>
    protected IEnumerable<(string Name, Parameter Parameter)> NamedTrainableParameters() =>
        named_parameters().Where(p => p.parameter.requires_grad);

    /// <summary>The parameters that need gradients.</summary>
    protected IEnumerable<Parameter> TrainableParameters() => NamedTrainableParameters().Select(p => p.Parameter);
}
