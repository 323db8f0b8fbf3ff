using System.Collections.Concurrent;
using System.IO.MemoryMappedFiles;
using System.Text;
using System.Text.Json;

namespace Conic.Data;

/// <summary>
/// An image folder decoded once into one file (FFCV's idea): every image resized so that its shorter side is at most
/// a maximum, stored as raw interleaved bytes after a JSON index, and read through a memory map, so later runs skip
/// JPEG decoding and the operating system's page cache holds what is used. Crops come from the whole stored image as
/// from the files. Layout: 16-byte magic, 8-byte index length, the index (UTF-8 JSON), pixels from the next 4 KiB.
/// </summary>
public static class ImageCache
{
    /// <summary>The extension of a cache file (<c>conic cache</c> writes it; <c>--data</c> reads it).</summary>
    public const string Extension = ".conic-cache";
    static readonly byte[] Magic = "CONIC-CACHE-v1\n\0"u8.ToArray();

    sealed record Index(string Source, int Channels, int MaxSide, long[] Offsets, int[] Widths, int[] Heights, string[] Names,
                        int[]? Labels, string[]? ClassNames);

    /// <summary>Whether <paramref name="path"/> is a cache file (by its first bytes).</summary>
    public static bool IsCache(string path)
    {
        if (!File.Exists(path) || new FileInfo(path).Length < Magic.Length) return false;
        using var stream = File.OpenRead(path);
        var head = new byte[Magic.Length];
        stream.ReadExactly(head);
        return head.AsSpan().SequenceEqual(Magic);
    }

    /// <summary>
    /// Writes <paramref name="images"/> (a streamed image folder) into <paramref name="path"/>, atomically, decoding on
    /// <paramref name="workers"/> threads. Files that fail to decode are left out and named in the returned notes.
    /// </summary>
    public static IReadOnlyList<string> Write(ImageDataset images, string path, int maxSide, int workers = 0, TextWriter? log = null)
    {
        if (maxSide < 8) throw new ConicException($"largest stored side {maxSide} is too small (at least 8 px)");
        var files = images.SourceFiles ?? throw new ConicException($"{images.Source}: only image folders can be cached");
        var stored = new (byte[] Pixels, int Width, int Height)?[images.Count];
        int done = 0, step = Math.Max(1, images.Count / 10);
        Parallel.For(0, images.Count, new ParallelOptions { MaxDegreeOfParallelism = workers > 0 ? workers : Environment.ProcessorCount }, i =>
        {
            var resized = ImageDecoder.Resized(files[i], maxSide, images.Channels);
            if (resized is { Complete: true } r) stored[i] = (r.Pixels, r.Width, r.Height);
            int finished = Interlocked.Increment(ref done);
            if (log != null && finished % step == 0 && finished < images.Count) lock (log) log.WriteLine($"cached {finished}/{images.Count} images");
        });
        var kept = Enumerable.Range(0, images.Count).Where(i => stored[i] != null).ToArray();
        if (kept.Length == 0) throw new ConicException($"{images.Source}: no image could be decoded");
        var offsets = new long[kept.Length];
        long offset = 0;
        for (int k = 0; k < kept.Length; k++)
        {
            offsets[k] = offset;
            offset += stored[kept[k]]!.Value.Pixels.Length;
        }
        var index = new Index(images.Source, images.Channels, maxSide, offsets, kept.Select(i => stored[i]!.Value.Width).ToArray(),
                              kept.Select(i => stored[i]!.Value.Height).ToArray(), kept.Select(i => images.ItemNames![i]).ToArray(),
                              images.Labels == null ? null : kept.Select(i => images.Labels[i]).ToArray(), images.ClassNames?.ToArray());
        byte[] json = JsonSerializer.SerializeToUtf8Bytes(index);
        long pixelsStart = PixelsStart(json.Length);
        Runtime.AtomicFile.Write(path, stream =>
        {
            stream.Write(Magic);
            stream.Write(BitConverter.GetBytes((long)json.Length));
            stream.Write(json);
            stream.Write(new byte[pixelsStart - stream.Position]);
            foreach (int i in kept) stream.Write(stored[i]!.Value.Pixels);
        });
        var left = Enumerable.Range(0, images.Count).Where(i => stored[i] == null).Select(i => files[i]).ToArray();
        return left.Length == 0 ? [] : [$"{left.Length} image{(left.Length == 1 ? "" : "s")} could not be decoded and were left out: {string.Join(", ", left.Take(10))}"];
    }

    static long PixelsStart(int indexLength) => (Magic.Length + 8 + indexLength + 4095) / 4096 * 4096;

    /// <summary>The cached images as a streamed data set served at <paramref name="imageSize"/>.</summary>
    public static ImageDataset Open(string path, int imageSize, int workers = 0)
    {
        if (imageSize < 8) throw new ConicException($"image size {imageSize} is too small (at least 8 px)");
        Runtime.MemoryEstimate.CheckImageSide(imageSize);
        Index index;
        long pixelsStart;
        try
        {
            using var stream = File.OpenRead(path);
            var head = new byte[Magic.Length + 8];
            stream.ReadExactly(head);
            long length = BitConverter.ToInt64(head, Magic.Length);
            if (!head.AsSpan(0, Magic.Length).SequenceEqual(Magic) || length <= 0 || length > stream.Length)
                throw new ConicException($"{path}: not a Conic image cache (write one with conic cache)");
            var json = new byte[length];
            stream.ReadExactly(json);
            index = JsonSerializer.Deserialize<Index>(json) ?? throw new JsonException("empty index");
            pixelsStart = PixelsStart(json.Length);
            long end = pixelsStart + (index.Offsets.Length == 0 ? 0 : index.Offsets[^1] + (long)index.Widths[^1] * index.Heights[^1] * index.Channels);
            if (stream.Length < end) throw new ConicException($"{path}: truncated image cache ({stream.Length} of {end} bytes)");
        }
        catch (Exception e) when (e is JsonException or EndOfStreamException)
        {
            throw new ConicException($"{path}: damaged image cache index ({e.Message.Split('\n')[0]}); write it again with conic cache");
        }
        var source = new CacheSource(path, index.Channels, pixelsStart, index.Offsets, index.Widths, index.Heights, index.Names);
        var files = new StreamedFiles(source, Enumerable.Range(0, index.Offsets.Length).ToArray(), workers, BadImagePolicy.Skip, new ConcurrentDictionary<string, string>());
        return new ImageDataset(files, index.Channels, imageSize, index.Labels, path, index.Names, index.ClassNames)
        {
            Notes = imageSize > index.MaxSide ? [$"{path}: images were stored with their shorter side at most {index.MaxSide} px, below the {imageSize} px asked for"] : [],
        };
    }

    /// <summary>Cache entries served from a memory map of the file, open as long as the data set is used (the process).</summary>
    sealed class CacheSource : IImageSource
    {
        readonly MemoryMappedFile _file;
        readonly MemoryMappedViewAccessor _view;
        readonly long _start;
        readonly int _channels;
        readonly long[] _offsets;
        readonly int[] _widths, _heights;
        readonly string[] _names;
        readonly string _path;

        public CacheSource(string path, int channels, long start, long[] offsets, int[] widths, int[] heights, string[] names)
        {
            _path = path;
            _file = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
            _view = _file.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            (_start, _channels, _offsets, _widths, _heights, _names) = (start, channels, offsets, widths, heights, names);
        }

        public (int Width, int Height) Size(int index) => (_widths[index], _heights[index]);

        public string Name(int index) => $"{_path}:{_names[index]}";

        public unsafe bool Render(int index, int channels, ReadOnlySpan<Crop> crops)
        {
            byte* pointer = null;
            _view.SafeMemoryMappedViewHandle.AcquirePointer(ref pointer);
            try
            {
                int length = _widths[index] * _heights[index] * _channels;
                var stored = new ReadOnlySpan<byte>(pointer + _view.PointerOffset + _start + _offsets[index], length);
                ImageDecoder.Render(stored, _widths[index], _heights[index], _channels, channels, crops);
                return true;
            }
            finally
            {
                _view.SafeMemoryMappedViewHandle.ReleasePointer();
            }
        }
    }
}
