using static TorchSharp.torch;

namespace Conic.Distributed;

/// <summary>How an all-reduce combines the ranks' values.</summary>
public enum Reduction
{
    /// <summary>The element-wise sum.</summary>
    Sum,
    /// <summary>The element-wise maximum.</summary>
    Max,
}

/// <summary>
/// The processes of a data-parallel run and the collectives training needs, on tensors. <see cref="Single"/> is one
/// process (every collective is the identity); <see cref="MpiProcessGroup"/> is Open MPI. A GPU backend (NCCL) would
/// be a third implementation behind the same five operations, with MPI still launching the ranks (docs/distributed).
/// </summary>
public abstract class ProcessGroup : IDisposable
{
    /// <summary>This process's rank, 0 to <see cref="Size"/> − 1.</summary>
    public abstract int Rank { get; }
    /// <summary>How many processes the run has.</summary>
    public abstract int Size { get; }
    /// <summary>The rank that writes checkpoints, metrics and reports.</summary>
    public bool IsMain => Rank == 0;
    /// <summary>Whether there is more than one process.</summary>
    public bool IsDistributed => Size > 1;

    /// <summary>Combines <paramref name="values"/> over all ranks, in place: every rank ends with the result.</summary>
    public abstract void AllReduce(Tensor values, Reduction reduction = Reduction.Sum);

    /// <summary>Every rank's <paramref name="values"/> (same shape on all) concatenated along dimension 0, rank order.</summary>
    public abstract Tensor AllGather(Tensor values);

    /// <summary>Overwrites <paramref name="values"/> on every rank with rank <paramref name="root"/>'s.</summary>
    public abstract void Broadcast(Tensor values, int root = 0);

    /// <summary>
    /// Rank r receives rows [r·R, (r+1)·R) of <paramref name="rows"/>, which only the root reads (R = rows / Size;
    /// other ranks pass null). Returns the received [R, …] block.
    /// </summary>
    public abstract Tensor Scatter(Tensor? rows, long[] blockShape, ScalarType type, int root = 0);

    /// <summary>Returns when every rank has reached it.</summary>
    public abstract void Barrier();

    /// <summary>
    /// A <see cref="Barrier"/> that sleeps while it waits instead of polling (Open MPI's blocking calls keep a core
    /// busy), so that a rank working alone meanwhile — rank 0 timing evaluation — has the machine's cores.
    /// </summary>
    public virtual void WaitQuietly() => Barrier();

    /// <summary>Seconds spent inside collectives so far (communication plus waiting for slower ranks).</summary>
    public virtual double CommunicationSeconds => 0;

    /// <summary>Leaves the group; one process has nothing to leave.</summary>
    public virtual void Dispose()
    {
    }

    /// <summary>One process: the collectives change nothing.</summary>
    public static readonly ProcessGroup Single = new SingleProcess();

    sealed class SingleProcess : ProcessGroup
    {
        public override int Rank => 0;
        public override int Size => 1;
        public override void AllReduce(Tensor values, Reduction reduction = Reduction.Sum) { }
        public override Tensor AllGather(Tensor values) => values.clone();
        public override void Broadcast(Tensor values, int root = 0) { }
        public override Tensor Scatter(Tensor? rows, long[] blockShape, ScalarType type, int root = 0) => rows!.clone();
        public override void Barrier() { }
    }
}
