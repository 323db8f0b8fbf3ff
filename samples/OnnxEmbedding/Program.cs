// Prints the embedding of one image with an encoder that Conic exported to ONNX:
//   ./conic export --run runs/conic --format onnx
//   dotnet run --project samples/OnnxEmbedding -- runs/conic/encoder.onnx samples/OnnxEmbedding/ankle-boot.png
using System.Globalization;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using SkiaSharp;

if (args.Length != 2)
{
    Console.Error.WriteLine("usage: dotnet run --project samples/OnnxEmbedding -- ENCODER.onnx IMAGE");
    return 2;
}
foreach (var file in args)
{
    if (!File.Exists(file))
    {
        Console.Error.WriteLine($"{file}: file not found");
        return 1;
    }
}

using var session = OpenModel(args[0]);
if (session == null) return 1;
// Conic stores how the encoder was trained in the model's metadata.
var metadata = session.ModelMetadata.CustomMetadataMap;
if (!metadata.TryGetValue("input_channels", out var channelText) || !metadata.TryGetValue("image_height", out var sizeText))
{
    Console.Error.WriteLine($"{args[0]}: no input_channels/image_height metadata; export it with 'conic export --format onnx'");
    return 1;
}
int channels = int.Parse(channelText, CultureInfo.InvariantCulture);
int size = int.Parse(sizeText, CultureInfo.InvariantCulture);

using var image = SKBitmap.Decode(args[1]);
if (image == null)
{
    Console.Error.WriteLine($"{args[1]}: not a readable image");
    return 1;
}

// The same preparation as Conic's image-folder reader: shorter side scaled to the training size, centre crop.
using var square = new SKBitmap(new SKImageInfo(size, size, SKColorType.Rgba8888, SKAlphaType.Unpremul));
using (var canvas = new SKCanvas(square))
{
    double scale = (double)size / Math.Min(image.Width, image.Height);
    int width = Math.Max(size, (int)Math.Round(image.Width * scale)), height = Math.Max(size, (int)Math.Round(image.Height * scale));
    canvas.Clear(SKColors.Black);
    using var source = SKImage.FromBitmap(image);
    canvas.DrawImage(source, SKRect.Create((size - width) / 2f, (size - height) / 2f, width, height),
                     new SKSamplingOptions(SKFilterMode.Linear, SKMipmapMode.Linear));
}

// Input: pixels in [0, 1], [1, C, H, W]; a one-channel encoder takes the red channel (= the gray value of a gray image).
var pixels = new DenseTensor<float>(new[] { 1, channels, size, size });
for (int y = 0; y < size; y++)
for (int x = 0; x < size; x++)
{
    SKColor color = square.GetPixel(x, y);
    byte[] rgb = { color.Red, color.Green, color.Blue };
    for (int c = 0; c < channels; c++) pixels[0, c, y, x] = rgb[c] / 255f;
}

using var results = session.Run(new[] { NamedOnnxValue.CreateFromTensor("image", pixels) });
float[] embedding = results.First().AsEnumerable<float>().ToArray();
Console.WriteLine($"{Path.GetFileName(args[1])}: {embedding.Length}-d embedding");
Console.WriteLine(string.Join(",", embedding.Select(v => v.ToString("R", CultureInfo.InvariantCulture))));
return 0;

static InferenceSession? OpenModel(string path)
{
    try
    {
        return new InferenceSession(path);
    }
    catch (OnnxRuntimeException e)
    {
        Console.Error.WriteLine($"{path}: not a loadable ONNX model ({e.Message.Split('\n')[0]})");
        return null;
    }
}
