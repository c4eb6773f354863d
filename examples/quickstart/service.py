"""The quickstart service: classify an iris flower from four measurements."""

import bentoml
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from train import FEATURES, MODEL_NAME, SPECIES


class Flower(BaseModel):
    """Four measurements in centimetres; anything else is rejected with a 400."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    sepal_length: float = Field(gt=0, le=15, description="Sepal length in cm")
    sepal_width: float = Field(gt=0, le=15, description="Sepal width in cm")
    petal_length: float = Field(gt=0, le=15, description="Petal length in cm")
    petal_width: float = Field(gt=0, le=15, description="Petal width in cm")


class Prediction(BaseModel):
    species: str
    probabilities: dict[str, float]
    model_version: str


EXAMPLE_INPUT = Flower(sepal_length=5.1, sepal_width=3.5, petal_length=1.4, petal_width=0.2)


def predict(model, flower: Flower, model_version: str) -> Prediction:
    """Run the model on one flower; no BentoML runtime needed."""
    row = pd.DataFrame([flower.model_dump()], columns=FEATURES)
    probabilities = model.predict_proba(row)[0]
    by_species = zip(SPECIES, probabilities, strict=True)
    return Prediction(
        species=SPECIES[int(probabilities.argmax())],
        probabilities={name: round(float(p), 4) for name, p in by_species},
        model_version=model_version,
    )


@bentoml.service(traffic={"timeout": 10})
class IrisClassifier:
    model_ref = bentoml.models.BentoModel(f"{MODEL_NAME}:latest")

    def __init__(self) -> None:
        self.model = bentoml.sklearn.load_model(self.model_ref)
        self.version = str(self.model_ref.tag.version)

    @bentoml.api(input_spec=Flower, output_spec=Prediction)
    def classify(self, **flower) -> Prediction:
        return predict(self.model, Flower(**flower), self.version)
