using static TorchSharp.torch;
using static Conic.Runtime.KeptScalars;

namespace Conic.Augmentation;

/// <summary>Which rows of a larger batch this process augments: rows [Start, Start + Count) of Total.</summary>
public readonly record struct BatchShare(long Total, long Start)
{
    /// <summary>The whole batch of <paramref name="count"/> rows (one process).</summary>
    public static BatchShare All(long count) => new(count, 0);
}

/// <summary>
/// Per-sample random numbers for a batch, drawn on the CPU from a seeded generator. Each draw is made for the whole
/// batch a share belongs to and then cut to the share, so a data-parallel rank's images get exactly the numbers they
/// would get in one process's batch.
/// </summary>
sealed class SampleDraws(Generator generator, BatchShare share, long count)
{
    public long Count => count;

    /// <summary>Uniform in [0, 1), one per sample, on the CPU.</summary>
    public Tensor Rand()
    {
        var all = rand(new[] { share.Total }, generator: generator);
        return share.Start == 0 && count == share.Total ? all : all.narrow(0, share.Start, count);
    }

    public Tensor Uniform(double low, double high, Device device) => Rand().mul_(Kept(high - low)).add_(Kept(low), Kept(1)).to(device);

    public Tensor Bernoulli(double probability, Device device) => Rand().lt(Kept(probability)).to(device);

    /// <summary>Integers in [0, <paramref name="high"/>).</summary>
    public Tensor RandInt(long high, Device device)
    {
        var all = randint(0, high, new[] { share.Total }, generator: generator);
        return (share.Start == 0 && count == share.Total ? all : all.narrow(0, share.Start, count)).to(device);
    }
}
