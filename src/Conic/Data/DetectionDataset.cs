using System.Text.Json;
using static TorchSharp.torch;

namespace Conic.Data;

/// <summary>A box in the dataset's resized images: class index (0-based, category order) and [x, y, width, height] in pixels.</summary>
public readonly record struct ObjectBox(int Class, float X, float Y, float Width, float Height);

/// <summary>
/// One split of a COCO-format detection set, held in memory: images resized to one square side (uint8 [N, C, S, S]),
/// each image's boxes in that frame, and the annotation file as read (original pixel coordinates, for COCO's AP).
/// </summary>
public sealed class DetectionDataset : IDisposable
{
    DetectionDataset(string source, Tensor images, ObjectBox[][] boxes, CocoFile annotations, IReadOnlyList<string> names)
    {
        Source = source;
        Images = images;
        Boxes = boxes;
        Annotations = annotations;
        Names = names;
    }

    /// <summary>The folder the split was read from.</summary>
    public string Source { get; }
    /// <summary>The images as uint8 [N, C, side, side].</summary>
    public Tensor Images { get; }
    /// <summary>Boxes of image i (in <see cref="Annotations"/>' image order), scaled to the resized image.</summary>
    public IReadOnlyList<ObjectBox[]> Boxes { get; }
    /// <summary>The split's COCO annotations as read.</summary>
    public CocoFile Annotations { get; }
    /// <summary>Each image's file name, in image order.</summary>
    public IReadOnlyList<string> Names { get; }
    /// <summary>How many images the split holds.</summary>
    public int Count => Names.Count;
    /// <summary>The side the images were resized to.</summary>
    public int Side => (int)Images.shape[2];

    /// <summary>Frees the images.</summary>
    public void Dispose() => Images.Dispose();

    /// <summary>The annotation file a split folder holds.</summary>
    public const string AnnotationFile = "annotations.json";

    /// <summary>
    /// The train and validation splits of <paramref name="folder"/>: <c>train/annotations.json</c> (COCO: images, annotations
    /// with bbox [x, y, w, h], categories) with its images in <c>train/images/</c> or beside the file, and <c>val/</c> (or
    /// <c>test/</c>) the same. Both splits must list the same categories.
    /// </summary>
    public static (DetectionDataset Train, DetectionDataset Validation, IReadOnlyList<CocoCategory> Categories) Load(string folder, int? channels, int? side)
    {
        if (!Directory.Exists(folder)) throw new ConicException($"{folder}: no such folder (--data)");
        string Split(string name) => Path.Combine(folder, name, AnnotationFile);
        string train = Split("train");
        if (!File.Exists(train)) throw new ConicException($"{folder}: no train/{AnnotationFile} (COCO-format boxes)");
        string validation = File.Exists(Split("val")) ? Split("val") : File.Exists(Split("test")) ? Split("test")
            : throw new ConicException($"{folder}: no val/{AnnotationFile} (or test/{AnnotationFile})");
        var (trainFile, trainImages) = Read(train);
        var (validationFile, validationImages) = Read(validation);
        var categories = trainFile.Categories.OrderBy(c => c.Id).ToArray();
        if (!categories.Select(c => c.Id).SequenceEqual(validationFile.Categories.Select(c => c.Id).Order()))
            throw new ConicException($"{validation}: its categories differ from those of {train}");
        int size = side ?? CommonSide(trainImages.Concat(validationImages).ToList(), trainFile.Images.Concat(validationFile.Images).ToList());
        int imageChannels = channels ?? (ImageDecoder.Probe(trainImages[0]).Gray ? 1 : 3);
        var classOf = categories.Select((c, index) => (c.Id, index)).ToDictionary(p => p.Id, p => p.index);
        return (Decode(train, trainFile, trainImages, imageChannels, size, classOf), Decode(validation, validationFile, validationImages, imageChannels, size, classOf), categories);
    }

    /// <summary>The annotation file, checked, and the path of each image it lists.</summary>
    static (CocoFile File, string[] Images) Read(string path)
    {
        CocoFile? file;
        try
        {
            file = JsonSerializer.Deserialize<CocoFile>(File.ReadAllText(path), CocoFile.Json);
        }
        catch (JsonException e)
        {
            throw new ConicException($"{path}: not valid COCO JSON ({e.Message.Split('\n')[0]})");
        }
        if (file?.Images is not { Count: > 0 } || file.Annotations == null || file.Categories is not { Count: > 0 })
            throw new ConicException($"{path}: a COCO file needs 'images' (at least one), 'annotations' and 'categories'");
        var images = file.Images.ToDictionary(i => i.Id);
        if (images.Count != file.Images.Count) throw new ConicException($"{path}: two images share an id");
        var categories = file.Categories.Select(c => c.Id).ToHashSet();
        foreach (var a in file.Annotations)
        {
            if (!images.TryGetValue(a.ImageId, out var image))
                throw new ConicException($"{path}: annotation {a.Id} names image {a.ImageId}, which 'images' does not list");
            if (!categories.Contains(a.CategoryId))
                throw new ConicException($"{path}: annotation {a.Id} names category {a.CategoryId}, which 'categories' does not list");
            if (a.Bbox is not { Length: 4 } box || box.Any(v => !double.IsFinite(v)))
                throw new ConicException($"{path}: annotation {a.Id} has no box [x, y, width, height]");
            if (box[2] <= 0 || box[3] <= 0)
                throw new ConicException($"{path}: annotation {a.Id} ({image.FileName}) has a box of zero area [{string.Join(", ", box)}]");
            // Half a pixel of slack: tools that round box corners produce boxes that end at width + 0.5.
            if (box[0] < -0.5 || box[1] < -0.5 || box[0] + box[2] > image.Width + 0.5 || box[1] + box[3] > image.Height + 0.5)
                throw new ConicException($"{path}: annotation {a.Id} has box [{string.Join(", ", box)}] outside its image {image.FileName} ({image.Width}x{image.Height})");
        }
        string folder = Path.GetDirectoryName(path)!;
        var paths = file.Images.Select(image =>
        {
            string inImages = Path.Combine(folder, "images", image.FileName), beside = Path.Combine(folder, image.FileName);
            return File.Exists(inImages) ? inImages : File.Exists(beside) ? beside
                : throw new ConicException($"{inImages}: missing (listed in {path})");
        }).ToArray();
        return (file, paths);
    }

    static int CommonSide(List<string> paths, List<CocoImage> images)
    {
        var first = images[0];
        for (int i = 0; i < images.Count; i++)
            if (images[i].Width != first.Width || images[i].Height != first.Height || first.Width != first.Height)
                throw new ConicException($"{paths[i]}: {images[i].Width}x{images[i].Height} px, but {paths[0]} is {first.Width}x{first.Height}; images of different or non-square sizes need --image-size N");
        return first.Width;
    }

    static DetectionDataset Decode(string path, CocoFile file, string[] paths, int channels, int side, Dictionary<int, int> classOf)
    {
        int plane = side * side;
        var pixels = new byte[paths.Length * channels * plane];
        try
        {
            Parallel.For(0, paths.Length, i =>
            {
                var probe = ImageDecoder.Probe(paths[i]);
                if (probe.Problem != null) throw new ConicException($"{paths[i]}: {probe.Problem}");
                var listed = file.Images[i];
                if (probe.Width != listed.Width || probe.Height != listed.Height)
                    throw new ConicException($"{paths[i]}: {probe.Width}x{probe.Height} px, but {path} says {listed.Width}x{listed.Height}");
                var crop = new Crop(new CropBox(0, 0, 1, 1), side, pixels.AsMemory(i * channels * plane, channels * plane));
                if (!ImageDecoder.Decode(paths[i], channels, crop)) throw new ConicException($"{paths[i]}: damaged image");
            });
        }
        catch (AggregateException e) when (e.InnerException is ConicException inner)
        {
            throw inner;
        }
        var byImage = file.Annotations.Where(a => a.Iscrowd == 0).ToLookup(a => a.ImageId);
        var boxes = file.Images.Select(image =>
        {
            float sx = (float)side / image.Width, sy = (float)side / image.Height;
            return byImage[image.Id].Select(a => new ObjectBox(classOf[a.CategoryId], (float)a.Bbox[0] * sx, (float)a.Bbox[1] * sy,
                                                                (float)a.Bbox[2] * sx, (float)a.Bbox[3] * sy)).ToArray();
        }).ToArray();
        var images = tensor(pixels, [paths.Length, channels, side, side], dtype: ScalarType.Byte);
        return new DetectionDataset(path, images, boxes, file, paths.Select(Path.GetFileName).ToArray()!);
    }
}
