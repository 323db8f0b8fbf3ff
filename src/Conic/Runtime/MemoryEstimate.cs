namespace Conic.Runtime;

/// <summary>Refuses work whose memory is known in advance to exceed what the machine has, before it starts.</summary>
public static class MemoryEstimate
{
    /// <summary>Memory the system can still give (MemAvailable; the GC's view where /proc is absent), in bytes.</summary>
    public static long AvailableBytes()
    {
        const string meminfo = "/proc/meminfo";
        var line = File.Exists(meminfo) ? File.ReadLines(meminfo).FirstOrDefault(l => l.StartsWith("MemAvailable:", StringComparison.Ordinal)) : null;
        return line != null && long.TryParse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], out long kib)
            ? kib * 1024
            : GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
    }

    /// <summary>A one-line error when <paramref name="bytes"/> for <paramref name="what"/> exceed the available memory.</summary>
    public static void CheckFits(long bytes, string what)
    {
        long available = AvailableBytes();
        if (bytes > available)
            throw new ConicException($"{what}: needs about {Format(bytes)}, more than the {Format(available)} of memory available; use a smaller size or fewer images");
    }

    /// <summary>
    /// Refuses an image side whose two float32 training views of a single colour image do not fit in memory (sizes
    /// past 46,000 px would also overflow the decoders' int arithmetic).
    /// </summary>
    public static void CheckImageSide(int side) =>
        CheckFits(2L * 3 * side * side * sizeof(float), $"--image-size {side}: two views of one image");

    /// <summary>Bytes in MiB, or GiB from 1 GiB on.</summary>
    public static string Format(long bytes) => bytes >= 1L << 30 ? $"{bytes / (double)(1L << 30):F1} GiB" : $"{bytes / (double)(1L << 20):F0} MiB";
}
