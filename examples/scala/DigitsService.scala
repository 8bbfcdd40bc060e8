import java.nio.file.{Files, Path}
import scala.jdk.CollectionConverters._
import scala.util.Using
import org.pyfront.{Model, ModelOptions, Tensor}

/** Classifies 8x8 digit images from a CSV (64 pixels 0..16, then the label) with a model
  * trained in Python by examples/train_digits.py; the Scala twin of examples/java.
  *
  *   scala DigitsService digits.pf digits_test.csv
  */
object DigitsService {
  private val Pixels = 64

  /** Pixels 0..16 scaled the way train_digits.py scaled them for training. */
  def image(fields: Array[String]): Tensor =
    Tensor.of(Array.tabulate(Pixels)(i => (fields(i).trim.toInt / 16.0).toFloat), 1L, Pixels.toLong)

  def main(args: Array[String]): Unit = {
    val options = ModelOptions.builder().maxBatchSize(64).build()
    Using.resource(Model.load(Path.of(args(0)), options)) { model =>
      println(s"loaded ${model.signature()}")
      val rows = Files.readAllLines(Path.of(args(1))).asScala.toVector.map(_.split(","))
      // all images at once: the asynchronous calls are batched into a few worker calls
      val pending = rows.map(fields => model.outputAsync(image(fields)))
      val digits = pending.map { f =>
        val scores = f.get().toFloatArray
        scores.indices.maxBy(i => scores(i))
      }
      rows.zip(digits).foreach { case (fields, d) =>
        println(s"predicted $d label ${fields(Pixels).trim}")
      }
      val correct = rows.zip(digits).count { case (fields, d) => fields(Pixels).trim.toInt == d }
      println(f"accuracy ${correct.toDouble / rows.size}%.4f on ${rows.size} digits")
    }
  }
}
