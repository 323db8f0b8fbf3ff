using System.Text.Json;
using System.Text.Json.Serialization;

namespace Conic.Data;

/// <summary>One image of a COCO annotation file; <see cref="FileName"/> is relative to the images folder.</summary>
public sealed record CocoImage(int Id, string FileName, int Width, int Height);

/// <summary>One object: its box as [x, y, width, height] in pixels from the image's top-left corner, its area in pixels.</summary>
public sealed record CocoAnnotation(long Id, int ImageId, int CategoryId, double[] Bbox, double Area, int Iscrowd);

/// <summary>A COCO category.</summary>
/// <param name="Id">The id annotations refer to (<c>category_id</c>).</param>
/// <param name="Name">The category's name.</param>
public sealed record CocoCategory(int Id, string Name);

/// <summary>
/// The parts of COCO's object-detection annotation format (cocodataset.org/#format-data) that boxes need: images,
/// annotations with bbox and area, categories. Property names are COCO's (snake case).
/// </summary>
public sealed record CocoFile(IReadOnlyList<CocoImage> Images, IReadOnlyList<CocoAnnotation> Annotations, IReadOnlyList<CocoCategory> Categories)
{
    /// <summary>COCO's JSON naming (snake case), indented.</summary>
    public static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    /// <summary>Writes the file atomically to <paramref name="path"/>.</summary>
    public void Save(string path) => Runtime.AtomicFile.Write(path, stream => JsonSerializer.Serialize(stream, this, Json));
}
