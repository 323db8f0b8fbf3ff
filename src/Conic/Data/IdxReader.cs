using System.IO.Compression;

namespace Conic.Data;

/// <summary>
/// Reads the IDX format of MNIST and Fashion-MNIST (http://yann.lecun.com/exdb/mnist/): a big-endian magic
/// number (0x0000080N, N dimensions, unsigned bytes), N big-endian sizes, then the bytes. Plain or .gz.
/// </summary>
public static class IdxReader
{
    const int UnsignedByteType = 0x08;

    /// <summary>Reads an images file: [count, rows, cols] as one channel.</summary>
    public static (byte[] Pixels, int Count, int Height, int Width) ReadImages(string path)
    {
        var (dims, data) = Read(path, expectedDimensions: 3);
        return (data, dims[0], dims[1], dims[2]);
    }

    /// <summary>Reads a labels file: [count].</summary>
    public static int[] ReadLabels(string path)
    {
        var (_, data) = Read(path, expectedDimensions: 1);
        return data.Select(b => (int)b).ToArray();
    }

    static (int[] Dims, byte[] Data) Read(string path, int expectedDimensions)
    {
        byte[] bytes;
        try
        {
            using var file = File.OpenRead(path);
            using Stream stream = path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase)
                ? new GZipStream(file, CompressionMode.Decompress)
                : file;
            using var memory = new MemoryStream();
            stream.CopyTo(memory);
            bytes = memory.ToArray();
        }
        catch (InvalidDataException)
        {
            throw new ConicException($"{path}: not a valid gzip file");
        }
        catch (IOException e)
        {
            throw new ConicException($"{path}: cannot read ({e.Message})");
        }

        if (bytes.Length < 4)
            throw new ConicException($"{path}: truncated IDX file ({bytes.Length} bytes, no header)");
        if (bytes[0] != 0 || bytes[1] != 0 || bytes[2] != UnsignedByteType || bytes[3] != expectedDimensions)
            throw new ConicException(
                $"{path}: wrong IDX magic 0x{bytes[0]:x2}{bytes[1]:x2}{bytes[2]:x2}{bytes[3]:x2}, expected 0x000008{expectedDimensions:x2} (unsigned bytes, {expectedDimensions} dimensions)");
        int headerBytes = 4 + 4 * expectedDimensions;
        if (bytes.Length < headerBytes)
            throw new ConicException($"{path}: truncated IDX header ({bytes.Length} of {headerBytes} bytes)");

        var dims = new int[expectedDimensions];
        long expected = 1;
        for (int d = 0; d < expectedDimensions; d++)
        {
            int offset = 4 + 4 * d;
            dims[d] = (bytes[offset] << 24) | (bytes[offset + 1] << 16) | (bytes[offset + 2] << 8) | bytes[offset + 3];
            if (dims[d] <= 0) throw new ConicException($"{path}: IDX dimension {d} is {dims[d]}");
            expected *= dims[d];
        }
        long actual = bytes.Length - headerBytes;
        if (actual < expected)
            throw new ConicException($"{path}: truncated IDX data ({actual} of {expected} bytes for [{string.Join(", ", dims)}])");
        if (actual > expected)
            throw new ConicException($"{path}: {actual - expected} unexpected bytes after the IDX data [{string.Join(", ", dims)}]");
        return (dims, bytes[headerBytes..]);
    }
}
