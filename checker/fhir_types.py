"""The FHIR resource type names, to tell a resource of another type (read and ignored) from a
misspelt or invented ``resourceType`` (rejected with an error).

Taken from the resource models of fhir.resources 8.3 (R5, R4B and STU3 packages) plus the R4 types that
R4B dropped (``R4_ONLY``); ``tests/test_ingest.py`` checks the names against fhir.resources.
"""

from __future__ import annotations

R4B_AND_R5: frozenset[str] = frozenset((
    "Account", "ActivityDefinition", "ActorDefinition", "AdministrableProductDefinition",
    "AdverseEvent", "AllergyIntolerance", "Appointment", "AppointmentResponse", "ArtifactAssessment",
    "AuditEvent", "Basic", "Binary", "BiologicallyDerivedProduct", "BiologicallyDerivedProductDispense",
    "BodyStructure", "Bundle", "CapabilityStatement", "CarePlan", "CareTeam",
    "CatalogEntry", "ChargeItem", "ChargeItemDefinition", "Citation", "Claim", "ClaimResponse",
    "ClinicalImpression", "ClinicalUseDefinition", "CodeSystem", "Communication",
    "CommunicationRequest", "CompartmentDefinition", "Composition", "ConceptMap", "Condition",
    "ConditionDefinition", "Consent", "Contract", "Coverage", "CoverageEligibilityRequest",
    "CoverageEligibilityResponse", "DetectedIssue", "Device", "DeviceAssociation", "DeviceDefinition",
    "DeviceDispense", "DeviceMetric", "DeviceRequest", "DeviceUsage", "DeviceUseStatement",
    "DiagnosticReport", "DocumentManifest", "DocumentReference", "Encounter",
    "EncounterHistory", "Endpoint", "EnrollmentRequest", "EnrollmentResponse", "EpisodeOfCare",
    "EventDefinition", "Evidence", "EvidenceReport", "EvidenceVariable", "ExampleScenario",
    "ExplanationOfBenefit", "FamilyMemberHistory", "Flag", "FormularyItem", "GenomicStudy", "Goal",
    "GraphDefinition", "Group", "GuidanceResponse", "HealthcareService", "ImagingSelection",
    "ImagingStudy", "Immunization", "ImmunizationEvaluation", "ImmunizationRecommendation",
    "ImplementationGuide", "Ingredient", "InsurancePlan", "InventoryItem", "InventoryReport", "Invoice",
    "Library", "Linkage", "List", "Location", "ManufacturedItemDefinition", "Measure", "MeasureReport",
    "Media", "Medication", "MedicationAdministration", "MedicationDispense", "MedicationKnowledge",
    "MedicationRequest", "MedicationStatement", "MedicinalProductDefinition", "MessageDefinition",
    "MessageHeader", "MolecularSequence", "NamingSystem", "NutritionIntake",
    "NutritionOrder", "NutritionProduct", "Observation", "ObservationDefinition", "OperationDefinition",
    "OperationOutcome", "Organization", "OrganizationAffiliation", "PackagedProductDefinition",
    "Parameters", "Patient", "PaymentNotice", "PaymentReconciliation", "Permission", "Person",
    "PlanDefinition", "Practitioner", "PractitionerRole", "Procedure", "Provenance", "Questionnaire",
    "QuestionnaireResponse", "RegulatedAuthorization", "RelatedPerson", "RequestGroup",
    "RequestOrchestration", "Requirements", "ResearchDefinition", "ResearchElementDefinition",
    "ResearchStudy", "ResearchSubject", "RiskAssessment", "Schedule", "SearchParameter",
    "ServiceRequest", "Slot", "Specimen", "SpecimenDefinition", "StructureDefinition", "StructureMap",
    "Subscription", "SubscriptionStatus", "SubscriptionTopic", "Substance", "SubstanceDefinition",
    "SubstanceNucleicAcid", "SubstancePolymer", "SubstanceProtein", "SubstanceReferenceInformation",
    "SubstanceSourceMaterial", "SupplyDelivery", "SupplyRequest", "Task", "TerminologyCapabilities",
    "TestPlan", "TestReport", "TestScript", "Transport", "ValueSet", "VerificationResult",
    "VisionPrescription",
))
R4_ONLY: frozenset[str] = frozenset((
    "EffectEvidenceSynthesis", "MedicinalProduct", "MedicinalProductAuthorization",
    "MedicinalProductContraindication", "MedicinalProductIndication", "MedicinalProductIngredient",
    "MedicinalProductInteraction", "MedicinalProductManufactured", "MedicinalProductPackaged",
    "MedicinalProductPharmaceutical", "MedicinalProductUndesirableEffect", "RiskEvidenceSynthesis",
    "SubstanceSpecification",
))
STU3_ONLY: frozenset[str] = frozenset((
    "BodySite", "DataElement", "DeviceComponent", "EligibilityRequest", "EligibilityResponse",
    "ExpansionProfile", "ImagingManifest", "ProcedureRequest", "ProcessRequest", "ProcessResponse",
    "ReferralRequest", "Sequence", "ServiceDefinition",
))
"""STU3 types with no R4 counterpart: tolerated (ignored), as harmless leftovers."""

KNOWN_RESOURCE_TYPES: frozenset[str] = R4B_AND_R5 | R4_ONLY | STU3_ONLY
