using System.Buffers.Binary;
using System.Numerics;

namespace Conic.Runtime;

/// <summary>
/// CRC-32C (Castagnoli), the checksum of TFRecord files and of checkpoint blocks. Kept here rather than taken from a
/// package: <see cref="BitOperations.Crc32C(uint, ulong)"/> is the hardware instruction (SSE 4.2), and only the
/// initial and final inversions are added.
/// </summary>
public static class Crc32C
{
    /// <summary>The running value a CRC starts from.</summary>
    public const uint Start = 0xFFFFFFFFu;

    /// <summary>Continues a running CRC (begun at <see cref="Start"/>) over <paramref name="data"/>.</summary>
    public static uint Append(uint running, ReadOnlySpan<byte> data)
    {
        while (data.Length >= 8)
        {
            running = BitOperations.Crc32C(running, BinaryPrimitives.ReadUInt64LittleEndian(data));
            data = data[8..];
        }
        foreach (byte b in data) running = BitOperations.Crc32C(running, b);
        return running;
    }

    /// <summary>The CRC of a running value (its final inversion).</summary>
    public static uint Finish(uint running) => running ^ 0xFFFFFFFFu;

    /// <summary>The CRC-32C of <paramref name="data"/>.</summary>
    public static uint Compute(ReadOnlySpan<byte> data) => Finish(Append(Start, data));
}
