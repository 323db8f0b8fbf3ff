namespace Conic.Data;

/// <summary>
/// Images held in memory as bytes, layout [count, channels, height, width], all of one size.
/// Labels are optional: pretraining never reads them, evaluation needs them.
/// </summary>
public sealed class ImageDataset
{
    public ImageDataset(byte[] pixels, int count, int channels, int height, int width, int[]? labels,
                        string source, IReadOnlyList<string>? itemNames = null, IReadOnlyList<string>? classNames = null)
    {
        if (pixels.Length != (long)count * channels * height * width)
            throw new ArgumentException($"{source}: {pixels.Length} bytes do not make {count} images of {channels}x{height}x{width}");
        if (labels != null && labels.Length != count)
            throw new ConicException($"{source}: {labels.Length} labels for {count} images");
        Pixels = pixels;
        Count = count;
        Channels = channels;
        Height = height;
        Width = width;
        Labels = labels;
        Source = source;
        ItemNames = itemNames;
        ClassNames = classNames;
    }

    public byte[] Pixels { get; }
    public int Count { get; }
    public int Channels { get; }
    public int Height { get; }
    public int Width { get; }
    public int[]? Labels { get; }
    /// <summary>Where the images came from (a folder or file), used in messages.</summary>
    public string Source { get; }
    /// <summary>File names of images read from a folder; null for IDX files.</summary>
    public IReadOnlyList<string>? ItemNames { get; }
    public IReadOnlyList<string>? ClassNames { get; }
    /// <summary>What the reader left out or changed and a user should know (e.g. truncated files), one line each.</summary>
    public IReadOnlyList<string> Notes { get; init; } = [];

    public int ImageBytes => Channels * Height * Width;
    public int ClassCount => Labels == null ? 0 : (ClassNames?.Count ?? Labels.Max() + 1);

    /// <summary>The first <paramref name="count"/> images (a view for quick runs and tests).</summary>
    public ImageDataset Take(int count)
    {
        if (count >= Count) return this;
        return new ImageDataset(Pixels[..(count * ImageBytes)], count, Channels, Height, Width, Labels?[..count],
                                Source, ItemNames?.Take(count).ToArray(), ClassNames);
    }

    /// <summary>The images at <paramref name="indices"/>, in that order.</summary>
    public ImageDataset Subset(IReadOnlyList<int> indices)
    {
        var pixels = new byte[indices.Count * ImageBytes];
        for (int i = 0; i < indices.Count; i++)
            Pixels.AsSpan(indices[i] * ImageBytes, ImageBytes).CopyTo(pixels.AsSpan(i * ImageBytes));
        return new ImageDataset(pixels, indices.Count, Channels, Height, Width, Labels == null ? null : indices.Select(i => Labels[i]).ToArray(),
                                Source, ItemNames == null ? null : indices.Select(i => ItemNames[i]).ToArray(), ClassNames);
    }

    /// <summary>The indices of up to <paramref name="count"/> images drawn without replacement, the same for the same seed, in dataset order.</summary>
    public int[] SampleIndices(int count, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, Count).OrderBy(_ => random.Next()).Take(count).Order().ToArray();
    }

    /// <summary>Per-channel mean and standard deviation of the pixels scaled to [0, 1].</summary>
    public (float[] Mean, float[] Std) ChannelStatistics()
    {
        var mean = new float[Channels];
        var std = new float[Channels];
        int plane = Height * Width;
        for (int c = 0; c < Channels; c++)
        {
            double sum = 0, sumSquares = 0;
            for (int i = 0; i < Count; i++)
            {
                var span = Pixels.AsSpan((i * Channels + c) * plane, plane);
                foreach (byte b in span)
                {
                    sum += b;
                    sumSquares += b * b;
                }
            }
            double n = (double)Count * plane * 255.0;
            double m = sum / n;
            mean[c] = (float)m;
            std[c] = (float)Math.Sqrt(Math.Max(sumSquares / (n * 255.0) - m * m, 1e-12));
        }
        return (mean, std);
    }
}

/// <summary>A training split and, when the source has one, a test split.</summary>
public sealed record DatasetSplits(ImageDataset Train, ImageDataset? Test)
{
    /// <summary>Notes of both splits and of how they were matched, one line each.</summary>
    public IReadOnlyList<string> Notes { get; init; } = [];
}
