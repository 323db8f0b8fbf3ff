using System.Collections.Concurrent;
using static TorchSharp.torch;

namespace Conic.Data;

/// <summary>What to do with an image file that cannot be read: leave it out with a counted warning, or stop.</summary>
public enum BadImagePolicy
{
    /// <summary>Leave the file out, count it and list it in bad-images.txt.</summary>
    Skip,
    /// <summary>Stop with an error naming the file.</summary>
    Fail,
}

/// <summary>
/// Images of one split, all served at one size [channels, height, width], with optional labels (pretraining never
/// reads them, evaluation needs them). Either held in memory as bytes (IDX data), or streamed: only the file list is
/// held and each image is decoded when a batch needs it, so memory does not grow with the number of images, and
/// training crops come from the whole image (<see cref="Crops"/>).
/// </summary>
public sealed class ImageDataset
{
    readonly byte[]? _pixels;
    readonly StreamedFiles? _files;

    /// <summary>Images held in memory: <paramref name="pixels"/> holds <paramref name="count"/> planar uint8 images [C, H, W] one after another; <paramref name="labels"/> may be null.</summary>
    public ImageDataset(byte[] pixels, int count, int channels, int height, int width, int[]? labels,
                        string source, IReadOnlyList<string>? itemNames = null, IReadOnlyList<string>? classNames = null)
        : this(count, channels, height, width, labels, source, itemNames, classNames)
    {
        if (pixels.Length != (long)count * channels * height * width)
            throw new ArgumentException($"{source}: {pixels.Length} bytes do not make {count} images of {channels}x{height}x{width}");
        _pixels = pixels;
    }

    /// <summary>A streamed set: the files, decoded at <paramref name="side"/> × <paramref name="side"/> when used.</summary>
    internal ImageDataset(StreamedFiles files, int channels, int side, int[]? labels, string source, IReadOnlyList<string> itemNames,
                          IReadOnlyList<string>? classNames)
        : this(files.Count, channels, side, side, labels, source, itemNames, classNames) => _files = files;

    ImageDataset(int count, int channels, int height, int width, int[]? labels, string source, IReadOnlyList<string>? itemNames,
                 IReadOnlyList<string>? classNames)
    {
        if (labels != null && labels.Length != count)
            throw new ConicException($"{source}: {labels.Length} labels for {count} images");
        Count = count;
        Channels = channels;
        Height = height;
        Width = width;
        Labels = labels;
        Source = source;
        ItemNames = itemNames;
        ClassNames = classNames;
    }

    /// <summary>How many images.</summary>
    public int Count { get; }
    /// <summary>Colour channels: 1 (grayscale) or 3 (RGB).</summary>
    public int Channels { get; }
    /// <summary>Image height in pixels.</summary>
    public int Height { get; }
    /// <summary>Image width in pixels.</summary>
    public int Width { get; }
    /// <summary>Each image's class index, or null for unlabelled images.</summary>
    public int[]? Labels { get; }
    /// <summary>Where the images came from (a folder or file), used in messages.</summary>
    public string Source { get; }
    /// <summary>File names of images read from a folder; null for IDX files.</summary>
    public IReadOnlyList<string>? ItemNames { get; }
    /// <summary>The class names in index order (class subfolders), or null.</summary>
    public IReadOnlyList<string>? ClassNames { get; }
    /// <summary>What the reader left out or changed and a user should know (e.g. truncated files), one line each.</summary>
    public IReadOnlyList<string> Notes { get; init; } = [];
    /// <summary>The image files of a data set read from an image folder; null for IDX data and caches.</summary>
    public IReadOnlyList<string>? SourceFiles => _files?.Paths;
    /// <summary>Whether images are decoded from files when used (image folders) rather than held in memory.</summary>
    public bool IsStreamed => _files != null;
    /// <summary>Files left out when the folder was read, and files that failed to decode since, with the problem.</summary>
    public IReadOnlyCollection<KeyValuePair<string, string>> BadFiles => _files?.Bad ?? (IReadOnlyCollection<KeyValuePair<string, string>>)[];

    /// <summary>Bytes of one image in memory.</summary>
    public int ImageBytes => Channels * Height * Width;
    /// <summary>How many classes the labels have (0 without labels).</summary>
    public int ClassCount => Labels == null ? 0 : (ClassNames?.Count ?? Labels.Max() + 1);

    /// <summary>The images at <paramref name="indices"/>, in that order.</summary>
    public ImageDataset Subset(IReadOnlyList<int> indices)
    {
        var labels = Labels == null ? null : indices.Select(i => Labels[i]).ToArray();
        var names = ItemNames == null ? null : indices.Select(i => ItemNames[i]).ToArray();
        if (_files != null)
            return new ImageDataset(_files.Subset(indices), Channels, Height, labels, Source, names!, ClassNames) { Notes = Notes };
        var pixels = new byte[indices.Count * ImageBytes];
        for (int i = 0; i < indices.Count; i++)
            _pixels.AsSpan(indices[i] * ImageBytes, ImageBytes).CopyTo(pixels.AsSpan(i * ImageBytes));
        return new ImageDataset(pixels, indices.Count, Channels, Height, Width, labels, Source, names, ClassNames);
    }

    /// <summary>The indices of up to <paramref name="count"/> images drawn without replacement, the same for the same seed, in dataset order.</summary>
    public int[] SampleIndices(int count, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, Count).OrderBy(_ => random.Next()).Take(count).Order().ToArray();
    }

    /// <summary>The images at <paramref name="indices"/> as uint8 [B, C, H, W]; streamed images as their centre square, resized.</summary>
    public Tensor Gather(IReadOnlyList<int> indices)
    {
        if (_files != null)
        {
            var files = _files;
            return Crops(indices, [(indices.Select(i => CropBox.CentreSquare(files.Size(i).Width, files.Size(i).Height)).ToArray(), Height)])[0];
        }
        var buffer = new byte[indices.Count * ImageBytes];
        for (int i = 0; i < indices.Count; i++)
            Buffer.BlockCopy(_pixels!, indices[i] * ImageBytes, buffer, i * ImageBytes, ImageBytes);
        return tensor(buffer, new long[] { indices.Count, Channels, Height, Width });
    }

    /// <summary>
    /// Streamed images only: for each view v, region Boxes[i] of the whole image <paramref name="indices"/>[i] resized
    /// to Side × Side, as uint8 [B, C, Side, Side]. Each image is decoded once for all views, on the worker threads.
    /// </summary>
    public Tensor[] Crops(IReadOnlyList<int> indices, IReadOnlyList<(IReadOnlyList<CropBox> Boxes, int Side)> views)
    {
        var files = _files ?? throw new InvalidOperationException($"{Source}: crops from whole images need a streamed data set");
        var buffers = views.Select(v => new byte[indices.Count * Channels * v.Side * v.Side]).ToArray();
        files.Decode(indices, Channels, i => views.Select((v, k) =>
        {
            int size = Channels * v.Side * v.Side;
            return new Crop(v.Boxes[i], v.Side, buffers[k].AsMemory(i * size, size));
        }).ToArray());
        return views.Select((v, k) => tensor(buffers[k], new long[] { indices.Count, Channels, v.Side, v.Side })).ToArray();
    }

    /// <summary>The centre squares of a seeded sample of up to 2,000 images, as bytes [n, C, H, W].</summary>
    byte[] SampledPixels()
    {
        using var sample = Gather(SampleIndices(2_000, seed: 0));
        return sample.data<byte>().ToArray();
    }

    /// <summary>
    /// Per-channel mean and standard deviation of the pixels scaled to [0, 1]; for a streamed set, of a seeded sample of
    /// up to 2,000 images' centre squares.
    /// </summary>
    public (float[] Mean, float[] Std) ChannelStatistics()
    {
        byte[] pixels = _pixels ?? SampledPixels();
        int count = pixels.Length / ImageBytes, plane = Height * Width;
        var mean = new float[Channels];
        var std = new float[Channels];
        for (int c = 0; c < Channels; c++)
        {
            double sum = 0, sumSquares = 0;
            for (int i = 0; i < count; i++)
            {
                foreach (byte b in pixels.AsSpan((i * Channels + c) * plane, plane))
                {
                    sum += b;
                    sumSquares += b * b;
                }
            }
            double n = (double)count * plane * 255.0;
            double m = sum / n;
            mean[c] = (float)m;
            std[c] = (float)Math.Sqrt(Math.Max(sumSquares / (n * 255.0) - m * m, 1e-12));
        }
        return (mean, std);
    }
}

/// <summary>Where a streamed data set's images come from: image files, or a cache of them resized (<see cref="ImageCache"/>).</summary>
interface IImageSource
{
    (int Width, int Height) Size(int index);
    /// <summary>The file (or cache entry) for messages.</summary>
    string Name(int index);
    /// <summary>Writes image <paramref name="index"/>'s crops; false when it could not be read completely.</summary>
    bool Render(int index, int channels, ReadOnlySpan<Crop> crops);
}

/// <summary>Image files decoded when used.</summary>
sealed class FileSource(IReadOnlyList<string> paths, IReadOnlyList<(int Width, int Height)> sizes) : IImageSource
{
    public (int Width, int Height) Size(int index) => sizes[index];
    public string Name(int index) => paths[index];
    public bool Render(int index, int channels, ReadOnlySpan<Crop> crops) => ImageDecoder.Decode(paths[index], channels, crops);
}

/// <summary>
/// The images of a streamed data set (a selection of a source's), and what to do with one that fails to read.
/// Failures are shared by every subset of the set (they are facts about the files).
/// </summary>
sealed class StreamedFiles(IImageSource source, IReadOnlyList<int> selection, int workers, BadImagePolicy policy,
                           ConcurrentDictionary<string, string> bad)
{
    public int Count => selection.Count;
    public ConcurrentDictionary<string, string> Bad => bad;
    /// <summary>The image files, when the source is files (not a cache).</summary>
    public IReadOnlyList<string>? Paths => source is FileSource files ? selection.Select(files.Name).ToArray() : null;

    public (int Width, int Height) Size(int index) => source.Size(selection[index]);

    public StreamedFiles Subset(IReadOnlyList<int> indices) => new(source, indices.Select(i => selection[i]).ToArray(), workers, policy, bad);

    /// <summary>Reads image <paramref name="indices"/>[i] once and writes its <paramref name="crops"/>(i), images in parallel.</summary>
    public void Decode(IReadOnlyList<int> indices, int channels, Func<int, Crop[]> crops)
    {
        var options = new ParallelOptions { MaxDegreeOfParallelism = workers > 0 ? workers : Environment.ProcessorCount };
        try
        {
            Parallel.For(0, indices.Count, options, i =>
            {
                int index = selection[indices[i]];
                if (source.Render(index, channels, crops(i))) return;
                string name = source.Name(index);
                if (policy == BadImagePolicy.Fail) throw new ConicException($"{name}: the image could not be decoded completely (damaged data)");
                // Kept in the batch as far as it decoded (the rest black), so batches keep their size and order; listed for the user.
                bad.TryAdd(name, "damaged data (found while decoding)");
            });
        }
        catch (AggregateException e) when (e.InnerException is ConicException inner)
        {
            throw inner;
        }
    }
}

/// <summary>A training split and, when the source has one, a test split.</summary>
public sealed record DatasetSplits(ImageDataset Train, ImageDataset? Test)
{
    /// <summary>Notes of both splits and of how they were matched, one line each.</summary>
    public IReadOnlyList<string> Notes { get; init; } = [];

    /// <summary>
    /// The training images less a held-out <paramref name="share"/> of them, which becomes the split evaluated on in
    /// place of the test split. The same images for every seed, method and run of a data set, so that runs compare.
    /// </summary>
    public DatasetSplits HoldingOutValidation(double share)
    {
        if (Train.Labels == null) throw new ConicException($"{Train.Source}: --validation needs labelled training images");
        int count = (int)Math.Round(share * Train.Count);
        if (count < 1 || count >= Train.Count)
            throw new ConicException($"--validation {share}: {count} of the {Train.Count} training images would be held out; give a share that leaves both splits images");
        var held = Train.SampleIndices(count, seed: ValidationSeed);
        var kept = Enumerable.Range(0, Train.Count).Except(held).ToArray();
        return new DatasetSplits(Train.Subset(kept), Train.Subset(held))
        {
            Notes = [.. Notes, $"validation: {count} of the {Train.Count} training images held out and evaluated on instead of the test split"],
        };
    }

    const int ValidationSeed = 20_261_206;
}
