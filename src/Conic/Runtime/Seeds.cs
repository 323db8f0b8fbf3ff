namespace Conic.Runtime;

/// <summary>Deterministic seed derivation (HashCode.Combine is randomised per process, so it cannot be used).</summary>
public static class Seeds
{
    /// <summary>A seed for one purpose of one epoch, stable across processes and platforms (SplitMix64 finaliser).</summary>
    public static int Derive(int seed, int epoch, int purpose)
    {
        ulong z = unchecked((ulong)(uint)seed * 0x9E3779B97F4A7C15UL + (ulong)(uint)epoch * 0xBF58476D1CE4E5B9UL + (ulong)(uint)purpose);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        z ^= z >> 31;
        return (int)(z & 0x7FFFFFFF);
    }
}
