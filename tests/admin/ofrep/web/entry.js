import { OpenFeature } from '@openfeature/web-sdk';
import { OFREPWebProvider } from '@openfeature/ofrep-web-provider';
window.OpenFeature = OpenFeature;
window.OFREPWebProvider = OFREPWebProvider;
