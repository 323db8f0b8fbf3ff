using TorchSharp;

namespace Conic.Runtime;

/// <summary>
/// Scalars for libtorch calls that cannot be freed while the call runs. TorchSharp 0.107 turns a number into a Scalar
/// whose only owner is its finalizer, and passes on the native handle without keeping the Scalar alive: when a garbage
/// collection runs during the call, the finalizer can free the Scalar while libtorch still reads it ("Unknown scalar
/// type", or a wrong number). Seen in long detection runs, and in 5 calls of 2 000 000 with a thread forcing collections.
/// A kept Scalar is referenced by its thread until <see cref="Held"/> later ones were made there — far beyond any
/// single call, which runs on the thread that made its arguments — and then left to the finalizer.
/// The implicit conversions are banned (BannedSymbols.txt), so every number goes through <c>Kept</c>; so are the
/// TorchSharp overloads that make such a Scalar themselves (add's alpha of 1, arange's start and step), and BatchNorm's
/// own forward (its batch count) is bypassed (Models/BatchNorms).
/// </summary>
public static class KeptScalars
{
    const int Held = 1024;

    [ThreadStatic] static Scalar?[]? _recent;
    [ThreadStatic] static int _next;

    /// <summary><paramref name="value"/> as a Scalar kept alive until well after the native call that uses it.</summary>
    public static Scalar Kept(double value) => Keep(value.ToScalar());
    /// <summary><paramref name="value"/> as a kept Scalar (see <see cref="Kept(double)"/>).</summary>
    public static Scalar Kept(float value) => Keep(value.ToScalar());
    /// <summary><paramref name="value"/> as a kept Scalar (see <see cref="Kept(double)"/>).</summary>
    public static Scalar Kept(long value) => Keep(value.ToScalar());
    /// <summary><paramref name="value"/> as a kept Scalar (see <see cref="Kept(double)"/>).</summary>
    public static Scalar Kept(int value) => Keep(value.ToScalar());
    /// <summary><paramref name="value"/> as a kept Scalar (see <see cref="Kept(double)"/>).</summary>
    public static Scalar Kept(bool value) => Keep(value.ToScalar());

    static Scalar Keep(Scalar scalar)
    {
        var recent = _recent ??= new Scalar?[Held];
        recent[_next] = scalar;
        _next = (_next + 1) % Held;
        return scalar;
    }
}
