using System.Runtime.CompilerServices;
using static Conic.Runtime.KeptScalars;
using static TorchSharp.torch;

namespace Conic.Tests;

public class KeptScalarsTests
{
    // Made in a method of its own so that no local of the test keeps the Scalar reachable.
    [MethodImpl(MethodImplOptions.NoInlining)]
    static WeakReference KeptAndForgotten(double value) => new(Kept(value));

    static void Collect()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
    }

    [Fact]
    public void AKeptScalarOutlivesCollectionsUntilManyLaterOnesWereMade()
    {
        var scalar = KeptAndForgotten(0.25);
        Collect();
        Assert.True(scalar.IsAlive, "a collection freed a Scalar made for a call");
        for (int i = 0; i < 2048; i++) _ = Kept(i);
        Collect();
        Assert.False(scalar.IsAlive, "kept Scalars are never released");
    }

    [Fact]
    public void KeptScalarsKeepTheirNumberType()
    {
        var counts = zeros(3, dtype: ScalarType.Int64);
        Assert.Equal(ScalarType.Int64, counts.add(Kept(2L), Kept(1)).dtype);
        Assert.Equal(ScalarType.Int64, counts.add(Kept(2), Kept(1)).dtype);
        Assert.Equal(ScalarType.Float32, counts.add(Kept(0.5), Kept(1)).dtype);
        Assert.Equal(0.5f, counts.add(Kept(0.5f), Kept(1))[0].item<float>());
        Assert.True(counts.eq(Kept(0)).all().item<bool>());
    }
}
