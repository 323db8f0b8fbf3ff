namespace Conic.Methods;

// Settings of the methods ConIC is compared with. Defaults follow the authors' code (../notes/method.md in the
// steering repo), scaled for 28-32 px images and a CPU budget; every change from the paper is said where it is made.

/// <summary>InstDisc (Wu et al. 2018): non-parametric softmax over a memory bank of instance features.</summary>
public sealed record InstDiscOptions
{
    /// <summary>
    /// 0.2 (paper: 0.07): with a few thousand instances the softmax over the whole bank at 0.07 learned far slower
    /// (30 epochs, 2,048 instances: kNN 63.5 % at 0.07, 74.5 % at 0.2).
    /// </summary>
    public double Temperature { get; init; } = 0.2;
    /// <summary>Negatives drawn from the bank per step; when the bank is no larger, the exact softmax over it is used.</summary>
    public int Negatives { get; init; } = 4096;
    /// <summary>Bank update v ← m·v + (1 − m)·f, then renormalised (0.5 in lemniscate).</summary>
    public double BankMomentum { get; init; } = 0.5;
    public int EmbeddingDim { get; init; } = 128;

    public void Validate()
    {
        Check.Temperature("--instdisc-temperature", Temperature);
        Check.Positive("--instdisc-negatives", Negatives);
        Check.UnitInterval("--instdisc-bank-momentum", BankMomentum);
    }
}

/// <summary>MoCo v1 / v2 (He et al. 2019; Chen et al. 2020): momentum key encoder and a queue of negatives.</summary>
public sealed record MocoOptions
{
    /// <summary>null: 0.07 for v1, 0.2 for v2.</summary>
    public double? Temperature { get; init; }
    /// <summary>
    /// 65,536 in the paper (5 % of ImageNet); capped at half the number of instances so that the queue rarely holds a
    /// stale key of a query's own image.
    /// </summary>
    public int QueueSize { get; init; } = 4096;
    /// <summary>0.999 in the paper for 800 steps an epoch; 0.99 for runs of a few thousand steps.</summary>
    public double EncoderMomentum { get; init; } = 0.99;
    /// <summary>
    /// Shuffling-BN substitute on one device: the batch is cut into this many groups that normalise separately, and
    /// keys are encoded in shuffled groups, so a query and its key never share BatchNorm statistics.
    /// </summary>
    public int ShuffleGroups { get; init; } = 4;
    public int EmbeddingDim { get; init; } = 128;

    public void Validate()
    {
        if (Temperature is double t) Check.Temperature("--moco-temperature", t);
        Check.Positive("--moco-queue", QueueSize);
        Check.UnitInterval("--moco-momentum", EncoderMomentum);
        Check.Positive("--moco-shuffle-groups", ShuffleGroups);
    }
}

/// <summary>SimCLR (Chen et al. 2020): NT-Xent over the 2B views of a batch.</summary>
public sealed record SimclrOptions
{
    /// <summary>0.5, the paper's CIFAR-10 value.</summary>
    public double Temperature { get; init; } = 0.5;
    public int EmbeddingDim { get; init; } = 128;

    public void Validate() => Check.Temperature("--simclr-temperature", Temperature);
}

/// <summary>BYOL (Grill et al. 2020): predictor on the online side, EMA target, symmetric 2 − 2cos loss.</summary>
public sealed record ByolOptions
{
    /// <summary>256 in the paper (4096 hidden); here the hidden width is 4x the backbone's features.</summary>
    public int ProjectionDim { get; init; } = 128;
    /// <summary>Target EMA momentum at the start, rising to 1 on a cosine (0.99 for short runs).</summary>
    public double BaseMomentum { get; init; } = 0.99;

    public void Validate() => Check.UnitInterval("--byol-momentum", BaseMomentum);
}

/// <summary>SwAV (Caron et al. 2020): prototypes, Sinkhorn-Knopp codes, swapped prediction, optional multi-crop.</summary>
public sealed record SwavOptions
{
    /// <summary>3,000 on ImageNet; 300 for datasets of a few thousand instances.</summary>
    public int Prototypes { get; init; } = 300;
    public double Temperature { get; init; } = 0.1;
    public double Epsilon { get; init; } = 0.05;
    public int SinkhornIterations { get; init; } = 3;
    /// <summary>The prototypes stay fixed for this many epochs (the paper's first-epoch freeze).</summary>
    public int FreezePrototypesEpochs { get; init; } = 1;
    public int EmbeddingDim { get; init; } = 128;

    public void Validate()
    {
        Check.Positive("--swav-prototypes", Prototypes);
        Check.Temperature("--swav-temperature", Temperature);
        Check.Positive("--swav-epsilon", Epsilon);
    }
}
