using static TorchSharp.torch;
using static Conic.Runtime.KeptScalars;

namespace Conic.Data;

/// <summary>
/// Images with per-pixel class masks, held in memory at one square size: images [N, C, S, S] and masks [N, S, S] as
/// bytes (mask value = class index, <see cref="IgnoreIndex"/> = not scored).
/// </summary>
public sealed class SegmentationDataset : IDisposable
{
    SegmentationDataset(string source, Tensor images, Tensor masks, string[] names)
    {
        Source = source;
        Images = images;
        Masks = masks;
        Names = names;
    }

    /// <summary>The mask value of pixels that are not scored (VOC's object borders, Cityscapes' void).</summary>
    public const int IgnoreIndex = 255;

    /// <summary>The folder the split was read from.</summary>
    public string Source { get; }
    /// <summary>The images as uint8 [N, C, side, side].</summary>
    public Tensor Images { get; }
    /// <summary>The masks as uint8 class indices [N, side, side] (255: not scored).</summary>
    public Tensor Masks { get; }
    /// <summary>Each image's file name, in order.</summary>
    public IReadOnlyList<string> Names { get; }
    /// <summary>How many images.</summary>
    public int Count => Names.Count;
    /// <summary>Colour channels of the images.</summary>
    public int Channels => (int)Images.shape[1];
    /// <summary>The side images and masks were resized to.</summary>
    public int Side => (int)Images.shape[2];

    /// <summary>Frees images and masks.</summary>
    public void Dispose()
    {
        Images.Dispose();
        Masks.Dispose();
    }

    /// <summary>File with the class names, one per line in index order (index 0 is usually the background).</summary>
    public const string ClassNamesFile = "classes.txt";

    /// <summary>
    /// The train and validation splits of <paramref name="folder"/>: <c>train/images</c> with <c>train/masks</c> (or
    /// <c>images/train</c> with <c>masks/train</c>), and the same for <c>val</c> or else <c>test</c>. Each image's mask
    /// is the PNG of the same name in the masks folder. Images and masks are resized to <paramref name="side"/> (masks
    /// by nearest neighbour); null keeps the images' size when they are all square and of one size. Null
    /// <paramref name="channels"/> reads grayscale images as one channel and others as three.
    /// </summary>
    public static SegmentationSplits Load(string folder, int? channels, int? side)
    {
        if (!Directory.Exists(folder)) throw new ConicException($"{folder}: no such folder (--data)");
        var (trainImages, trainMasks) = SplitFolders(folder, "train")
            ?? throw new ConicException($"{folder}: no train/images and train/masks folders (nor images/train and masks/train)");
        var (valImages, valMasks) = SplitFolders(folder, "val") ?? SplitFolders(folder, "test")
            ?? throw new ConicException($"{folder}: no validation split (val/images and val/masks, or test/...)");
        var trainPairs = Pairs(trainImages, trainMasks);
        var valPairs = Pairs(valImages, valMasks);
        int size = side ?? CommonSide(trainPairs.Concat(valPairs).Select(p => p.Image));
        int imageChannels = channels ?? (ImageDecoder.Probe(trainPairs[0].Image).Gray ? 1 : 3);

        string namesPath = Path.Combine(folder, ClassNamesFile);
        string[]? names = File.Exists(namesPath) ? File.ReadAllLines(namesPath).Select(l => l.Trim()).Where(l => l.Length > 0).ToArray() : null;
        var train = Read(trainImages, trainPairs, imageChannels, size, names?.Length, namesPath);
        var val = Read(valImages, valPairs, imageChannels, size, names?.Length, namesPath);
        int classes = names?.Length ?? Math.Max(MaxClass(train), MaxClass(val)) + 1;
        if (classes < 2) throw new ConicException($"{trainMasks}: every mask holds class 0 only; segmentation needs at least two classes");
        return new SegmentationSplits(train, val, names ?? Enumerable.Range(0, classes).Select(c => $"class {c}").ToArray());
    }

    static (string Images, string Masks)? SplitFolders(string folder, string split)
    {
        foreach (var (images, masks) in new[] { (Path.Combine(folder, split, "images"), Path.Combine(folder, split, "masks")),
                                                (Path.Combine(folder, "images", split), Path.Combine(folder, "masks", split)) })
            if (Directory.Exists(images) && Directory.Exists(masks)) return (images, masks);
        return null;
    }

    static readonly HashSet<string> ImageExtensions = new(StringComparer.OrdinalIgnoreCase) { ".png", ".jpg", ".jpeg", ".bmp", ".webp" };

    static List<(string Image, string Mask)> Pairs(string images, string masks)
    {
        var pairs = Directory.EnumerateFiles(images).Where(f => ImageExtensions.Contains(Path.GetExtension(f))).Order(StringComparer.Ordinal)
            .Select(image =>
            {
                string mask = Path.Combine(masks, Path.GetFileNameWithoutExtension(image) + ".png");
                return File.Exists(mask) ? (image, mask) : throw new ConicException($"{image}: no mask ({mask} is missing)");
            }).ToList();
        return pairs.Count > 0 ? pairs : throw new ConicException($"{images}: no images (PNG, JPEG, BMP, WebP)");
    }

    static int CommonSide(IEnumerable<string> images)
    {
        var sizes = images.Select(path => (Path: path, Probe: ImageDecoder.Probe(path))).ToList();
        var (first, probe) = sizes[0];
        foreach (var (path, other) in sizes)
            if (other.Width != probe.Width || other.Height != probe.Height || other.Width != other.Height)
                throw new ConicException($"{path}: {other.Width}x{other.Height} px, but {first} is {probe.Width}x{probe.Height}; images of different or non-square sizes need --image-size N");
        return probe.Width;
    }

    static SegmentationDataset Read(string folder, List<(string Image, string Mask)> pairs, int channels, int side, int? classes, string namesPath)
    {
        int plane = side * side;
        var pixels = new byte[pairs.Count * channels * plane];
        var labels = new byte[pairs.Count * plane];
        try
        {
            Parallel.For(0, pairs.Count, i => ReadPair(pairs[i], i));
        }
        catch (AggregateException e) when (e.InnerException is ConicException inner)
        {
            throw inner;
        }
        var images = tensor(pixels, [pairs.Count, channels, side, side], dtype: ScalarType.Byte);
        var masks = tensor(labels, [pairs.Count, side, side], dtype: ScalarType.Byte);
        return new SegmentationDataset(folder, images, masks, pairs.Select(p => Path.GetFileName(p.Image)).ToArray());

        void ReadPair((string Image, string Mask) pair, int i)
        {
            var (image, mask) = pair;
            var probe = ImageDecoder.Probe(image);
            if (probe.Problem != null) throw new ConicException($"{image}: {probe.Problem}");
            var (indices, width, height) = MaskReader.Read(mask);
            if (width != probe.Width || height != probe.Height)
                throw new ConicException($"{mask}: mask is {width}x{height} px but its image {image} is {probe.Width}x{probe.Height}");
            if (classes is int count && indices.FirstOrDefault(v => v >= count && v != IgnoreIndex, (byte)0) is var bad and > 0)
                throw new ConicException($"{mask}: class index {bad}, but {namesPath} names {count} classes (0..{count - 1}; 255 = ignore)");
            var crop = new Crop(new CropBox(0, 0, 1, 1), side, pixels.AsMemory(i * channels * plane, channels * plane));
            if (!ImageDecoder.Decode(image, channels, crop)) throw new ConicException($"{image}: damaged image");
            ResizeNearest(indices, width, height, labels.AsSpan(i * plane, plane), side);
        }
    }

    static void ResizeNearest(byte[] source, int width, int height, Span<byte> destination, int side)
    {
        for (int y = 0; y < side; y++)
        {
            int sy = Math.Min(height - 1, (int)((y + 0.5) * height / side));
            for (int x = 0; x < side; x++)
                destination[y * side + x] = source[sy * width + Math.Min(width - 1, (int)((x + 0.5) * width / side))];
        }
    }

    static int MaxClass(SegmentationDataset data)
    {
        using var scored = data.Masks.masked_select(data.Masks.ne(Kept(IgnoreIndex)));
        return scored.numel() == 0 ? 0 : scored.max().item<byte>();
    }
}

/// <summary>A segmentation data set's training and validation splits and its class names (index order).</summary>
public sealed record SegmentationSplits(SegmentationDataset Train, SegmentationDataset Validation, IReadOnlyList<string> ClassNames) : IDisposable
{
    /// <summary>How many classes.</summary>
    public int Classes => ClassNames.Count;

    /// <summary>Frees both splits.</summary>
    public void Dispose()
    {
        Train.Dispose();
        Validation.Dispose();
    }
}
