using Conic.Data;
using Conic.Evaluation;
using Conic.Reporting;
using SkiaSharp;

namespace Conic.Transfer;

/// <summary>A picture of what a detector does: a few validation images with the true boxes (green) and the detections scoring at least 0.3 (red, with class and score).</summary>
static class DetectionPictures
{
    const double ShownScore = 0.3;

    public static void Write(string path, DetectionDataset data, IReadOnlyList<Detection> found, IReadOnlyList<CocoCategory> categories, int count = 6)
    {
        const int scale = 4;
        var names = categories.ToDictionary(c => c.Id, c => c.Name);
        var byImage = found.Where(d => d.Score >= ShownScore).ToLookup(d => d.ImageId);
        var cells = new List<Figures.Cell>();
        for (int i = 0; i < Math.Min(count, data.Count); i++)
        {
            var image = data.Annotations.Images[i];
            using var pixels = data.Images[i];
            using var small = Figures.Picture(pixels.data<byte>().ToArray(), (int)pixels.shape[0], data.Side, data.Side);
            int side = data.Side * scale;
            var picture = new SKBitmap(side, side);
            using (var canvas = new SKCanvas(picture))
            {
                using var source = SKImage.FromBitmap(small);
                canvas.DrawImage(source, SKRect.Create(side, side), new SKSamplingOptions(SKFilterMode.Nearest));
                float sx = (float)side / image.Width, sy = (float)side / image.Height;
                using var truth = new SKPaint { Color = SKColors.LimeGreen, Style = SKPaintStyle.Stroke, StrokeWidth = 2 };
                using var detected = new SKPaint { Color = SKColors.Red, Style = SKPaintStyle.Stroke, StrokeWidth = 2 };
                using var ink = new SKPaint { Color = SKColors.Red, IsAntialias = true };
                using var font = new SKFont(SKTypeface.Default, 11);
                foreach (var box in data.Annotations.Annotations.Where(a => a.ImageId == image.Id))
                    canvas.DrawRect(SKRect.Create((float)box.Bbox[0] * sx, (float)box.Bbox[1] * sy, (float)box.Bbox[2] * sx, (float)box.Bbox[3] * sy), truth);
                foreach (var d in byImage[image.Id])
                {
                    var rect = SKRect.Create((float)d.Bbox[0] * sx, (float)d.Bbox[1] * sy, (float)d.Bbox[2] * sx, (float)d.Bbox[3] * sy);
                    canvas.DrawRect(rect, detected);
                    canvas.DrawText($"{names[d.CategoryId]} {d.Score:F2}", rect.Left + 2, Math.Max(rect.Top - 2, 10), font, ink);
                }
            }
            cells.Add(new Figures.Cell(picture, image.FileName));
        }
        byte[] png = Figures.Grid([("green: truth, red: detections scoring >= 0.3", cells)], cellSize: data.Side * scale);
        foreach (var cell in cells) cell.Picture.Dispose();
        Runtime.AtomicFile.Write(path, stream => stream.Write(png));
    }
}
